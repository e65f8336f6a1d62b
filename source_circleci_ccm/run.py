"""Console entry point `source-circleci-ccm`: spec, check, discover, read."""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from typing import List, Optional

import orjson
from airbyte_cdk.entrypoint import AirbyteEntrypoint, launch
from airbyte_cdk.models import (
    AirbyteErrorTraceMessage,
    AirbyteMessage,
    AirbyteConnectionStatus,
    AirbyteMessageSerializer,
    AirbyteTraceMessage,
    FailureType,
    Status,
    TraceType,
    Type,
)

from airbyte_cdk.utils.airbyte_secrets_utils import filter_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_circleci_ccm.source import SourceCircleciCcm


def _source(args: List[str]) -> Optional[SourceCircleciCcm]:
    config_path = AirbyteEntrypoint.extract_config(args)
    catalog_path = AirbyteEntrypoint.extract_catalog(args)
    state_path = AirbyteEntrypoint.extract_state(args)
    try:
        return SourceCircleciCcm(
            catalog=SourceCircleciCcm.read_catalog(catalog_path) if catalog_path else None,
            config=SourceCircleciCcm.read_config(config_path) if config_path else None,
            state=SourceCircleciCcm.read_state(state_path) if state_path else None,
        )
    except Exception as error:  # noqa: BLE001 - reported as an Airbyte trace, never as a bare traceback
        _print_error(
            f"Could not start source-circleci-ccm: {type(error).__name__}: {error}. Check that the --config, "
            f"--catalog and --state files exist and hold valid JSON."
        )
        return None


def _print_error(message: str) -> None:
    trace = AirbyteMessage(
        type=Type.TRACE,
        trace=AirbyteTraceMessage(
            type=TraceType.ERROR,
            emitted_at=datetime.now(timezone.utc).timestamp() * 1000,
            error=AirbyteErrorTraceMessage(message=message, failure_type=FailureType.config_error),
        ),
    )
    print(orjson.dumps(AirbyteMessageSerializer.dump(trace)).decode())


def _command(args: List[str]) -> Optional[str]:
    return next((arg for arg in args if arg in ("spec", "check", "discover", "read")), None)


def _print_connection_failed(message: str) -> None:
    status = AirbyteMessage(
        type=Type.CONNECTION_STATUS,
        connectionStatus=AirbyteConnectionStatus(status=Status.FAILED, message=message),
    )
    print(orjson.dumps(AirbyteMessageSerializer.dump(status)).decode())


def run() -> None:
    args = sys.argv[1:]
    source = _source(args)
    if source is None:
        sys.exit(1)
    command = _command(args)
    if source.config_error and command in ("check", "discover", "read"):
        # Said before the CDK validates the config against the spec, whose messages quote a regular
        # expression ("'x' does not match '^\\s*https?://...'") instead of saying what to change.
        source.register_secrets()
        message = filter_secrets(source.config_error)
        if command == "check":
            _print_connection_failed(message)
            return
        _print_error(message)
        sys.exit(1)
    try:
        launch(source, args)
    except AirbyteTracedException as error:
        if error.failure_type != FailureType.config_error:
            raise  # the CDK's handler reports it, stack trace included, as for any unexpected failure
        # A config error found once the sync started (a rejected token, an unknown organisation): the
        # message says what to change; a stack trace would only bury it.
        _print_error(filter_secrets(error.message or "The configuration is not valid."))
        sys.exit(1)


if __name__ == "__main__":
    run()
