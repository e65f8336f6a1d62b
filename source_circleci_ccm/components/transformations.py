"""Parent keys on every record, so a warehouse can join without the API."""

from __future__ import annotations

from dataclasses import InitVar, dataclass
from typing import Any, Dict, List, Mapping, Optional

from airbyte_cdk.sources.declarative.transformations.transformation import RecordTransformation
from airbyte_cdk.sources.types import Config, StreamSlice, StreamState


@dataclass
class ParentKeys(RecordTransformation):
    """Copies the named keys from the slice (its partition, else its extra fields) onto each record, keeping a
    value the record already has. AddFields would render a Jinja template per field and record: on a
    20,000-job sync that was the largest single share of the connector's CPU."""

    keys: List[str]
    parameters: InitVar[Mapping[str, Any]]

    def transform(
        self,
        record: Dict[str, Any],
        config: Optional[Config] = None,
        stream_state: Optional[StreamState] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> None:
        partition = stream_slice.partition if stream_slice is not None else {}
        extra = stream_slice.extra_fields if stream_slice is not None else {}
        for key in self.keys:
            if record.get(key) is None:
                record[key] = partition[key] if key in partition else extra.get(key)
