"""Stream schemas shipped as package data (generated from the OpenAPI spec by scripts/generate_schemas.py)."""

from __future__ import annotations

import json
from dataclasses import InitVar, dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from airbyte_cdk.sources.declarative.schema.schema_loader import SchemaLoader


@lru_cache(maxsize=None)
def packaged_schema(stream_name: str) -> Mapping[str, Any]:
    text = resources.files("source_circleci_ccm").joinpath("schemas", f"{stream_name}.json").read_text("utf-8")
    return json.loads(text)


@dataclass
class PackagedSchemaLoader(SchemaLoader):
    """Loads `schemas/<stream>.json` through importlib.resources, which works from a wheel and an
    editable install alike (the CDK's JsonFileSchemaLoader returns `{}` under an editable install)."""

    parameters: InitVar[Mapping[str, Any]]

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        self._stream_name = parameters["name"]

    def get_json_schema(self) -> Mapping[str, Any]:
        return packaged_schema(self._stream_name)
