"""The manifest's requester, sending through the sync's shared session."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from airbyte_cdk.sources.declarative.requesters.http_requester import HttpRequester
from airbyte_cdk.sources.declarative.requesters.request_options.interpolated_request_options_provider import (
    InterpolatedRequestOptionsProvider,
)

from source_circleci_ccm.components.context import SyncContext


@dataclass
class CircleCIRequester(HttpRequester):
    """An HttpRequester whose requests share one session per sync: answers fetched once for every
    stream, one cap on requests in flight, one pacing by CircleCI's rate-limit headers."""

    # A CustomRequester is built from its dataclass fields, so `request_parameters` is declared here.
    request_parameters: Optional[Mapping[str, str]] = None

    def __post_init__(self, parameters: Mapping[str, Any]) -> None:
        if self.request_parameters:
            self.request_options_provider = InterpolatedRequestOptionsProvider(
                config=self.config, request_parameters=self.request_parameters, parameters=parameters
            )
        super().__post_init__(parameters)
        # The CDK gives each requester a session of its own; sharing one is the point of this class.
        self._http_client._session = SyncContext.current(self.config).session
