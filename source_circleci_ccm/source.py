"""The Airbyte source: checks the config, builds one client and one crawl per run, and the streams around them.

- The config is trimmed and checked first, so every mistake gets a message that says how to fix it.
- `check` asks `GET /v2/me` (three attempts, no long retries) and tells an unreachable URL from a rejected token.
- `read` builds the run (components/streams.py) for the configured catalog and reads it with the CDK's
  concurrent reader; every stream of the run shares the client (client.py) and, for activity, the crawl.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator, List, Mapping, MutableMapping, Optional
from urllib.parse import quote

import yaml
from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    ConnectorSpecification,
    ConnectorSpecificationSerializer,
    FailureType,
    Status,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.concurrent_source.concurrent_source import ConcurrentSource
from airbyte_cdk.sources.connector_state_manager import ConnectorStateManager
from airbyte_cdk.sources.message import InMemoryMessageRepository
from airbyte_cdk.sources.source import Source
from airbyte_cdk.sources.utils.slice_logger import DebugSliceLogger
from airbyte_cdk.utils.airbyte_secrets_utils import add_to_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from source_circleci_ccm.components.client import CircleCIClient, CircleCIUnavailable
from source_circleci_ccm.components.crawl import ActivityCrawl, Consumer
from source_circleci_ccm.components.cursor import ActivityCursor, KeyedCursor, PartitionWritten
from source_circleci_ccm.components.http import CircleCISession
from source_circleci_ccm.components.progress import parse_time
from source_circleci_ccm.components.security_controls import SecurityControls, catalogue_from_config
from source_circleci_ccm.components.streams import ACTIVITY_STREAMS, LIST_STREAMS, STREAM_NAMES, SyncStreams, build_stream
from source_circleci_ccm.components.validation import SchemaCheck
from source_circleci_ccm.config import ConfigError, normalize_config

SPEC = Path(__file__).with_name("spec.yaml")
IDENTITY_ATTEMPTS = 3
# Streams whose rows name projects seen in the feeds: the crawl lists the feeds down to start_date for them.
PROJECT_STREAMS = frozenset(
    {
        "projects",
        "project_settings",
        "project_env_vars",
        "project_checkout_keys",
        "project_schedules",
        "pipeline_definitions",
        "pipeline_triggers",
        "webhooks",
    }
)


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


class SourceCircleciCcm(Source):
    def __init__(
        self,
        catalog: Optional[ConfiguredAirbyteCatalog] = None,
        config: Optional[Mapping[str, Any]] = None,
        state: Optional[List[AirbyteStateMessage]] = None,
        **kwargs: Any,
    ) -> None:
        self._config_error: Optional[str] = None
        self._config: dict[str, Any] = {}
        if config is not None:
            try:
                self._config = normalize_config(config)
            except ConfigError as error:
                self._config_error = str(error)
        self._catalog = catalog
        self._state = state or []
        self._secrets = secret_forms(self._config.get("api_token"), config)
        self._run: Optional[_Run] = None

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

    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        # The CDK's default looks for spec.yaml in the package of the *class*, which a subclass elsewhere would change.
        return ConnectorSpecificationSerializer.load(yaml.safe_load(SPEC.read_text("utf-8")))

    def _require_config(self) -> None:
        self.register_secrets()
        if self._config_error:
            raise AirbyteTracedException(message=self._config_error, failure_type=FailureType.config_error)

    def _sync(self, catalog: Optional[ConfiguredAirbyteCatalog]) -> "_Run":
        if self._run is None:
            self._run = _Run(self._config, catalog or self._catalog, self._state)
        return self._run

    # --- check -----------------------------------------------------------------------------------------
    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        self.register_secrets()
        if self._config_error:
            return AirbyteConnectionStatus(status=Status.FAILED, message=self._config_error)
        run = self._sync(None)
        try:
            problem = run.identity_problem()[0] or run.organization_problem()
        except AirbyteTracedException as error:
            problem = error.message
        finally:
            run.close()
        if problem:
            return AirbyteConnectionStatus(status=Status.FAILED, message=problem)
        return AirbyteConnectionStatus(status=Status.SUCCEEDED)

    # --- discover and read -----------------------------------------------------------------------------
    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        self._require_config()
        return AirbyteCatalog(streams=[stream.as_airbyte_stream() for stream in self._sync(None).streams.values()])

    def read(
        self,
        logger: logging.Logger,
        config: Mapping[str, Any],
        catalog: ConfiguredAirbyteCatalog,
        state: Optional[List[AirbyteStateMessage]] = None,
    ) -> Iterator[AirbyteMessage]:
        self._require_config()
        run = self._sync(self._catalog or catalog)
        schema_check = SchemaCheck()
        try:
            problem, fatal = run.identity_problem()
            if fatal:
                raise AirbyteTracedException(message=problem, failure_type=FailureType.config_error)
            # An org slug the token cannot see fails the sync once, up front, with the list of visible
            # organisations (otherwise every activity stream fails on its own with a vaguer message).
            unknown_org = run.organization_problem()
            if unknown_org:
                raise AirbyteTracedException(message=unknown_org, failure_type=FailureType.config_error)
            for message in run.read(logger, self._catalog or catalog):
                if message.type == Type.LOG and isinstance(message.log, PartitionWritten):
                    yield from run.partition_written(message.log.partition)  # its records are out: state may count them
                    continue
                if message.type == Type.RECORD and message.record is not None:
                    schema_check.observe(message.record.stream, message.record.data)
                yield message
        finally:
            schema_check.report(logger)
            run.report(logger)
            run.close()


class _Run:
    """What one run builds once: the client, the crawl, each selected activity stream's cursor, the streams."""

    def __init__(self, config: Mapping[str, Any], catalog: Optional[ConfiguredAirbyteCatalog], state: List[AirbyteStateMessage]) -> None:
        self.config = config
        self._ca_file = _ca_bundle_file(config.get("ca_certificate"))
        workers = int(config.get("num_workers") or 8)
        session = CircleCISession(workers, float(config.get("request_timeout_seconds") or 60), self._ca_file)
        self.client = CircleCIClient(config.get("api_url") or "", config.get("api_token") or "", session)
        self.message_repository = InMemoryMessageRepository()
        self._state_manager = ConnectorStateManager(state=state)
        configured = {c.stream.name: c for c in (catalog.streams if catalog else [])}
        self._workers = workers
        self._cursors: dict[str, ActivityCursor] = {}
        consumers: dict[str, Consumer] = {}
        for stream in ACTIVITY_STREAMS:
            if stream.name in configured:
                cursor = self._cursor(stream.name, configured[stream.name].sync_mode == SyncMode.incremental)
                self._cursors[stream.name] = cursor
                needs = stream.needs | ({"job_steps"} if stream.name == "security_controls" and "job_steps" in configured else frozenset())
                consumers[stream.name] = Consumer(stream.name, cursor.progress, needs, stream.revisits, whole_pipeline=stream.whole_pipeline)
        self.crawl = ActivityCrawl(
            self.client, config, list(consumers.values()), discover_projects=bool(PROJECT_STREAMS & set(configured)), workers=workers
        )
        controls = SecurityControls(
            catalogue_from_config(config) if "security_controls" in configured else None,
            self.crawl,
            lambda: self.client.server_time,
            with_steps="job_steps" in configured,
        )
        self.sync = SyncStreams(self.client, self.crawl, controls, consumers)
        controls.sources = self.sync
        for stream in LIST_STREAMS:
            if stream.cursor_field and stream.name in configured:
                incremental = configured[stream.name].sync_mode == SyncMode.incremental
                previous = self._state_manager.get_stream_state(stream.name, None) if incremental else None
                self.sync.list_cursors[stream.name] = KeyedCursor(
                    stream.name, previous, state_manager=self._state_manager, message_repository=self.message_repository
                )
        for stream in ACTIVITY_STREAMS:
            if stream.planner and stream.name in consumers:
                consumers[stream.name].plan = stream.planner(self.sync, consumers[stream.name])
        cursors = {**self._cursors, **self.sync.list_cursors}
        self.streams = {name: build_stream(self.sync, name, cursors.get(name), self.message_repository) for name in STREAM_NAMES}

    def _cursor(self, name: str, incremental: bool) -> ActivityCursor:
        previous: Optional[MutableMapping[str, Any]] = self._state_manager.get_stream_state(name, None) if incremental else None
        return ActivityCursor(
            name,
            previous,
            start=parse_time(self.config.get("start_date")),
            lookback_seconds=int(self.config.get("unfinished_lookback_days") or 30) * 86400,
            server_time=lambda: self.client.server_time,
            state_manager=self._state_manager,
            message_repository=self.message_repository,
        )

    def identity_problem(self) -> tuple[Optional[str], bool]:
        """What is wrong with GET /v2/me, if anything, and whether no sync could succeed with it
        (the token is rejected, or the API cannot be reached at all)."""
        api_url = self.client.api_url
        try:
            identity = self.client.identity(attempts=IDENTITY_ATTEMPTS)
        except CircleCIUnavailable as error:
            if error.unreachable:
                proxy = (
                    " The proxy set in HTTPS_PROXY / HTTP_PROXY did not answer: check it, or list the host in NO_PROXY."
                    if error.what == "ProxyError"
                    else ""
                )
                return (
                    f"Cannot reach the CircleCI API at {api_url} ({error.what}, {IDENTITY_ATTEMPTS} attempts). "
                    f"Check api_url (https://circleci.com/api for CircleCI cloud, https://<your-host>/api for "
                    f"CircleCI server) and that this machine can reach it.{proxy}"
                ), True
            return (
                f"CircleCI at {api_url} answered GET /v2/me with {error.what}. Check that api_url points at the "
                f"CircleCI API (it ends in /api) and try again later if CircleCI is having trouble."
            ), False
        except AirbyteTracedException as error:  # a rejected token or a refused redirect
            return error.message, True
        if not isinstance(identity, dict) or not identity.get("id"):
            return f"{api_url}/v2/me did not answer with a CircleCI user: api_url does not seem to point at the CircleCI API.", False
        return None, False

    def organization_problem(self) -> Optional[str]:
        if not (self.config.get("org_slugs") or self.config.get("project_slugs")):
            return None
        try:
            self.crawl.organizations()
        except AirbyteTracedException as error:
            return error.message
        return None

    def read(self, logger: logging.Logger, catalog: ConfiguredAirbyteCatalog) -> Iterator[AirbyteMessage]:
        selected = [self.streams[c.stream.name] for c in catalog.streams if c.stream.name in self.streams]
        if not selected:
            return
        # Every selected stream generates partitions at once (an activity stream waits on the crawl, which
        # waits for the slowest stream), plus `num_workers` threads that read partitions.
        source = ConcurrentSource.create(
            num_workers=len(selected) + self._workers,
            initial_number_of_partitions_to_generate=len(selected),
            logger=logger,
            slice_logger=DebugSliceLogger(),
            message_repository=self.message_repository,
        )
        yield from source.read(selected)

    def partition_written(self, partition: Any) -> Iterator[AirbyteMessage]:
        """A partition's records are all written (see `cursor.PartitionWritten`): its stream's cursor counts them,
        and the state it writes goes out now, after them."""
        name = partition.stream_name()
        cursor = self._cursors.get(name) or self.sync.list_cursors.get(name)
        if cursor is not None:
            cursor.partition_written(partition)
        yield from self.message_repository.consume_queue()

    def report(self, logger: logging.Logger) -> None:
        summary = self.client.skips.summary()
        if summary:
            logger.warning(summary)
        if self._cursors:
            logger.info(f"The crawl held at most {self.crawl.peak_held} pipelines' answers at once (window {self.crawl.window}).")

    def close(self) -> None:
        self.crawl.close()
        self.client.close()
        if self._ca_file:
            Path(self._ca_file).unlink(missing_ok=True)


def _ca_bundle_file(pem: Optional[str]) -> Optional[str]:
    """requests reads a CA bundle from a file: the configured PEM, written for this run only."""
    if not pem or not pem.strip():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as handle:
        handle.write(pem.strip() + "\n")
    return handle.name
