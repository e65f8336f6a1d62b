"""The Airbyte source: the manifest, plus what only Python can do around it.

- The config is trimmed and checked first, so every mistake gets a message that says how to fix it.
- `check` asks `GET /v2/me` once, without retries, and tells an unreachable URL from a rejected token.
- Activity streams get an ActivityCursor (see components/cursor.py).
"""

from __future__ import annotations

import base64
import logging
import time
from pathlib import Path
from typing import Any, Iterator, List, Mapping, Optional
from urllib.parse import quote

import requests
from airbyte_cdk.models import (
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    FailureType,
    Status,
    Type,
)
from airbyte_cdk.sources.declarative.yaml_declarative_source import YamlDeclarativeSource
from airbyte_cdk.sources.streams.concurrent.abstract_stream import AbstractStream
from airbyte_cdk.sources.streams.concurrent.cursor import CursorField
from airbyte_cdk.sources.streams.concurrent.default_stream import DefaultStream
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_circleci_ccm.components.context import SyncContext
from source_circleci_ccm.components.cursor import ActivityCursor
from source_circleci_ccm.components.validation import SchemaCheck
from source_circleci_ccm.components.routers import ActivityPartitionRouter
from source_circleci_ccm.config import ConfigError, normalize_config

def secret_forms(token: Optional[str], raw_config: Optional[Mapping[str, Any]]) -> list[str]:
    """The token as configured, trimmed, URL-encoded and base64-encoded: every form output must never hold."""
    forms: list[str] = []
    raw = raw_config.get("api_token") if isinstance(raw_config, Mapping) else None
    for value in (raw, token):
        if isinstance(value, str) and value.strip():
            stripped = value.strip()
            forms += [value, stripped, quote(stripped, safe=""), base64.b64encode(stripped.encode()).decode()]
            forms.append(base64.b64encode(f"{stripped}:".encode()).decode())  # HTTP basic auth form
    # Longest first, so a longer form is masked whole before a shorter one inside it.
    return sorted({form for form in forms if len(form) >= 4}, key=len, reverse=True)


MANIFEST = Path(__file__).with_name("manifest.yaml")
IDENTITY_ATTEMPTS = 3
TOKEN_HELP = (
    "Regenerate it under CircleCI → User Settings → Personal API Tokens and update the token in this connection."
)


class SourceCircleciCcm(YamlDeclarativeSource):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        **kwargs: Any,
    ) -> None:
        self._config_error: Optional[str] = None
        normalized: Optional[dict[str, Any]] = None
        if config is not None:
            try:
                normalized = normalize_config(config)
            except ConfigError as error:
                self._config_error = str(error)
        self._context = SyncContext.begin(normalized or {}, catalog, state)
        self._secrets = secret_forms(normalized["api_token"] if normalized else None, config)
        # A config that fails our checks is not handed to the manifest: a value such as num_workers 0
        # would otherwise fail deep inside the CDK with an AssertionError instead of our message.
        super().__init__(
            path_to_yaml=str(MANIFEST), catalog=catalog, config=normalized if normalized is not None else {}, state=state, **kwargs
        )

    @property
    def config_error(self) -> Optional[str]:
        """What is wrong with the configuration and how to fix it, or None."""
        return self._config_error

    def register_secrets(self) -> None:
        """Mask the token in every form it could take in output. The CDK masks the raw config values only,
        and replaces its list when check/read start, so this runs after that (and the trimmed token,
        its URL-encoded and base64 forms differ from the raw value)."""
        for secret in self._secrets:
            add_to_secrets(secret)

    # --- check -----------------------------------------------------------------------------------------
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        self.register_secrets()
        if self._config_error:
            return AirbyteConnectionStatus(status=Status.FAILED, message=self._config_error)
        problem = self._identity_problem()[0] or self._organization_problem()
        if problem:
            return AirbyteConnectionStatus(status=Status.FAILED, message=problem)
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    def _identity_problem(self) -> tuple[Optional[str], bool]:
        """What is wrong with GET /v2/me, if anything, and whether no sync could succeed with it
        (the token is rejected, or the API cannot be reached at all)."""
        api_url = self._config["api_url"]
        for attempt in range(IDENTITY_ATTEMPTS):
            try:
                # Through the sync's session: the `me` stream then reuses this answer.
                response = self._context.session.get(
                    f"{api_url}/v2/me",
                    headers={"Circle-Token": self._config["api_token"], "Accept": "application/json"},
                    timeout=(10, self._config["request_timeout_seconds"]),
                )
                break
            except requests.exceptions.RequestException as error:
                if attempt + 1 < IDENTITY_ATTEMPTS:
                    time.sleep(2**attempt)  # a reset or a blip: ask again before calling the host unreachable
                    continue
                return (
                    f"Cannot reach the CircleCI API at {api_url} ({type(error).__name__}, {IDENTITY_ATTEMPTS} attempts). "
                    f"Check api_url (https://circleci.com/api for CircleCI cloud, https://<your-host>/api for "
                    f"CircleCI server) and that this machine can reach it."
                ), True
        if response.status_code == 401:
            return f"CircleCI rejected the API token (401 Unauthorized): it is invalid, expired or deleted. {TOKEN_HELP}", True
        if response.status_code != 200:
            return (
                f"CircleCI at {api_url} answered GET /v2/me with HTTP {response.status_code}. Check that api_url "
                f"points at the CircleCI API (it ends in /api) and try again later if CircleCI is having trouble."
            ), False
        try:
            identity = response.json()
        except ValueError:
            identity = None
        if not isinstance(identity, dict) or not identity.get("id"):
            return f"{api_url}/v2/me did not answer with a CircleCI user: api_url does not seem to point at the CircleCI API.", False
        return None, False

    def _fatal_identity_problem(self) -> Optional[str]:
        """Fail a sync once, up front, when no stream could succeed (rather than once per stream after
        minutes of retries); anything else (a 5xx, say) is left to the streams' retries."""
        problem, fatal = self._identity_problem()
        return problem if fatal else None

    def _organization_problem(self) -> Optional[str]:
        if not (self._config.get("org_slugs") or self._config.get("project_slugs")):
            return None
        self.streams(self._config)  # builds the routers, which give the crawl its requester
        try:
            self._context.crawl().organizations()
        except AirbyteTracedException as error:
            return error.message
        return None

    # --- discover and read -----------------------------------------------------------------------------
    def streams(self, config: Mapping[str, Any]) -> List[AbstractStream]:  # type: ignore[override]
        self.register_secrets()
        if self._config_error:
            raise AirbyteTracedException(message=self._config_error, failure_type=FailureType.config_error)
        return [self._with_activity_cursor(stream) for stream in super().streams(config)]

    def _with_activity_cursor(self, stream: AbstractStream) -> AbstractStream:
        generator = getattr(stream, "_stream_partition_generator", None)
        router = getattr(generator, "_stream_slicer", None)
        if not isinstance(stream, DefaultStream) or not isinstance(router, ActivityPartitionRouter):
            return stream
        cursor = ActivityCursor(
            stream.name,
            router.progress,
            self._context.session,
            self._message_repository,
            self._connector_state_manager,
        )
        return DefaultStream(
            partition_generator=generator,  # type: ignore[arg-type]
            name=stream.name,
            json_schema=stream.get_json_schema,
            primary_key=list(stream._primary_key),
            cursor_field=CursorField(router.cursor_field),
            logger=logging.getLogger(f"airbyte.{stream.name}"),
            cursor=cursor,
        )

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> Iterator[AirbyteMessage]:
        self.register_secrets()
        schema_check = SchemaCheck()
        try:
            if self._config_error:
                raise AirbyteTracedException(message=self._config_error, failure_type=FailureType.config_error)
            fatal = self._fatal_identity_problem()
            if fatal:
                raise AirbyteTracedException(message=fatal, failure_type=FailureType.config_error)
            # An org slug the token cannot see fails the sync once, up front, with the list of visible
            # organisations (otherwise every activity stream fails on its own with a vaguer message).
            unknown_org = self._organization_problem()
            if unknown_org:
                raise AirbyteTracedException(message=unknown_org, failure_type=FailureType.config_error)
            for message in super().read(logger, config, catalog, state):
                if message.type == Type.RECORD and message.record is not None:
                    schema_check.observe(message.record.stream, message.record.data)
                yield message
        finally:
            schema_check.report(logger)
            summary = self._context.session.skips.summary()
            if summary:
                logger.warning(summary)
            self._context.close()
