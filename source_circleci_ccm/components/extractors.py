"""Record extractors the manifest's DpathExtractor cannot express."""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any, Iterable, Mapping

import requests
from airbyte_cdk.sources.declarative.extractors.record_extractor import RecordExtractor
from airbyte_cdk.sources.types import Config


@dataclass
class JobStepsExtractor(RecordExtractor):
    """job_steps: one record per step of a v1.1 build, `{step_index, name, actions}` in the order CircleCI ran
    them (the position in `steps` is the step's index; its actions are kept exactly as given)."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]

    def extract_records(self, response: requests.Response) -> Iterable[Mapping[str, Any]]:
        try:
            body = response.json()
        except ValueError:
            return
        steps = body.get("steps") if isinstance(body, Mapping) else None
        for index, step in enumerate(steps or []):
            if isinstance(step, Mapping):
                yield {"step_index": index, "name": step.get("name"), "actions": step.get("actions") or []}
