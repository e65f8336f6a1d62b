"""Records that do not match their stream's schema are emitted unchanged and reported, never dropped.

CircleCI's answers drift from its OpenAPI spec (a null where a value is required, a string where a number
is declared). An evidence pipeline must not lose such a record, and must not hide it either: each stream
with mismatching records gets one warning at the end of the sync, counting them and naming the fields.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from typing import Any, Callable, Mapping, Optional

import fastjsonschema
from jsonschema import Draft7Validator

from source_circleci_ccm.components.schemas import packaged_schema

_EXAMPLES = 3


class SchemaCheck:
    """Counts, per stream, the records that do not validate against the stream's JSON schema."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._validators: dict[str, Optional[tuple[Callable[[Any], Any], Draft7Validator]]] = {}
        self.records: Counter[str] = Counter()
        self.invalid: Counter[str] = Counter()
        self._problems: dict[str, Counter[str]] = {}

    def _validator(self, stream: str) -> Optional[tuple[Callable[[Any], Any], Draft7Validator]]:
        """A compiled check for every record (it runs on the sync's main thread: jsonschema alone cost ~8% of a
        sync's CPU) and jsonschema to describe the rare record that fails it. Formats are not checked by either."""
        if stream not in self._validators:
            try:
                schema = packaged_schema(stream)
            except (FileNotFoundError, ValueError):
                schema = None
            self._validators[stream] = (
                (fastjsonschema.compile(dict(schema), use_formats=False), Draft7Validator(schema)) if schema else None
            )
        return self._validators[stream]

    def observe(self, stream: str, record: Mapping[str, Any]) -> bool:
        """True when the record matches the schema (or the stream has none)."""
        with self._lock:
            validators = self._validator(stream)
            self.records[stream] += 1
            if validators is None:
                return True
            fast_check, describer = validators
            try:
                fast_check(record)
                return True
            except fastjsonschema.JsonSchemaValueException:
                errors = list(describer.iter_errors(record))
            if not errors:
                return True
            self.invalid[stream] += 1
            problems = self._problems.setdefault(stream, Counter())
            for error in errors:
                problems[_describe(error)] += 1
            return False

    def warnings(self) -> list[str]:
        """One message per stream with mismatching records."""
        messages = []
        for stream in sorted(self.invalid):
            examples = "; ".join(problem for problem, _ in self._problems[stream].most_common(_EXAMPLES))
            messages.append(
                f"{self.invalid[stream]} of {self.records[stream]} {stream} records do not match the stream's schema "
                f"({examples}). They were emitted unchanged; CircleCI's answer differs from its API specification."
            )
        return messages

    def report(self, logger: logging.Logger) -> None:
        for message in self.warnings():
            logger.warning(message)


def _describe(error: Any) -> str:
    """Where and which rule, never the value itself (it may be long, or sensitive)."""
    field = "/".join(str(part) for part in error.absolute_path) or "(the record)"
    expected = error.validator_value if error.validator in ("type", "format", "maxLength", "minLength") else None
    rule = f"{error.validator} {expected}" if expected is not None else str(error.validator)
    return f"{field}: {rule}"[:200]
