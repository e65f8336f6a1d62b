"""CircleCI's one pagination scheme, with the two stops the manifest cannot say."""

from __future__ import annotations

import logging
from dataclasses import InitVar, dataclass
from typing import Any, Mapping, Optional

import requests
from airbyte_cdk.sources.declarative.requesters.paginators.strategies.pagination_strategy import PaginationStrategy
from airbyte_cdk.sources.types import Config, Record, StreamSlice

from source_circleci_ccm.components.crawl import next_page_token

LOGGER = logging.getLogger("airbyte")


@dataclass
class NextPageToken(PaginationStrategy):
    """Follow `next_page_token` until it is absent; also stop when the server hands back the token just
    used (instead of looping), and, for newest-first pipeline feeds, once a page reaches below the
    slice's `stop_below` (everything older was read by an earlier sync)."""

    config: Config
    parameters: InitVar[Mapping[str, Any]]

    @property
    def initial_token(self) -> Optional[Any]:
        return None

    def next_page_token(
        self,
        response: requests.Response,
        last_page_size: int,
        last_record: Optional[Record],
        last_page_token_value: Optional[Any],
        page_size_override: Optional[int] = None,
        stream_slice: Optional[StreamSlice] = None,
    ) -> Optional[Any]:
        try:
            body = response.json()
        except ValueError:
            return None
        extra = stream_slice.extra_fields if isinstance(stream_slice, StreamSlice) else {}
        used = {last_page_token_value} if last_page_token_value else set()
        token = next_page_token(body, used, extra.get("stop_below"))
        repeated = body.get("next_page_token") if isinstance(body, Mapping) else None
        if token is None and isinstance(repeated, str) and repeated in used:
            LOGGER.warning(
                f"CircleCI returned the same page token twice for {requests.utils.urlparse(response.url).path}; "
                "stopped paging there instead of looping."
            )
        return token

    def get_page_size(self) -> Optional[int]:
        return None
