"""Reading the user's configuration: trim what can be trimmed, refuse what cannot work, say how to fix it."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime, timezone
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

from source_circleci_ccm.components.slugs import SHORT_PROVIDER

DEFAULT_API_URL = "https://circleci.com/api"
DEFAULT_NUM_WORKERS = 8
MAX_NUM_WORKERS = 32
DEFAULT_TIMEOUT_SECONDS = 60
DEFAULT_UNFINISHED_LOOKBACK_DAYS = 30

_ORG_SLUG = re.compile(r"^(gh|github|bb|bitbucket|circleci)/[^/\s]+$")
_PROJECT_SLUG = re.compile(r"^(gh|github|bb|bitbucket|circleci)/[^/\s]+/[^/\s]+$")
# The spec's pattern: a date, or a date and time with an optional UTC offset (RFC 3339).
_START_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?$")
TOKEN_SETTINGS = "CircleCI → User Settings → Personal API Tokens"  # where a user creates or regenerates a token


class ConfigError(ValueError):
    """A configuration the connector cannot work with; the message tells the user what to change."""


def normalize_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Return the config with defaults filled in and whitespace trimmed; raise ConfigError if it cannot work."""
    config = dict(raw)
    config["api_token"] = _token(raw.get("api_token"))
    config["api_url"] = _api_url(raw.get("api_url"))
    config["org_slugs"] = [_slug(s, _ORG_SLUG, "org_slugs", "gh/acme") for s in _list(raw, "org_slugs")]
    config["project_slugs"] = [
        _slug(s, _PROJECT_SLUG, "project_slugs", "gh/acme/api") for s in _list(raw, "project_slugs")
    ]
    start_date = _start_date(raw.get("start_date"))
    if start_date:
        config["start_date"] = start_date
    else:
        config.pop("start_date", None)
    config["num_workers"] = _bounded_int(raw, "num_workers", DEFAULT_NUM_WORKERS, 1, MAX_NUM_WORKERS)
    config["request_timeout_seconds"] = _bounded_int(raw, "request_timeout_seconds", DEFAULT_TIMEOUT_SECONDS, 1, 600)
    config["unfinished_lookback_days"] = _bounded_int(
        raw, "unfinished_lookback_days", DEFAULT_UNFINISHED_LOOKBACK_DAYS, 1, 90
    )
    config["ca_certificate"] = _ca_certificate(raw.get("ca_certificate"))
    return config


def _ca_certificate(value: Any) -> Optional[str]:
    if value in (None, ""):
        return None
    text = value.strip() if isinstance(value, str) else ""
    if "-----BEGIN CERTIFICATE-----" not in text or "-----END CERTIFICATE-----" not in text:
        raise ConfigError(
            "ca_certificate must be the certificate authority's certificate in PEM form (the text from "
            "-----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----), or empty for CircleCI cloud."
        )
    return text


def _token(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"api_token must be text (the personal API token as CircleCI shows it), not a {type(value).__name__}. "
            f"Create one under {TOKEN_SETTINGS} and paste it into the connection."
        )
    token = value.strip() if isinstance(value, str) else ""
    if not token:
        raise ConfigError(
            f"api_token is missing or empty. Create a personal API token under {TOKEN_SETTINGS} and paste it into the connection."
        )
    if any(ch.isspace() for ch in token):
        raise ConfigError(
            f"api_token contains spaces or line breaks inside it, so it cannot be a CircleCI token. Copy it again from {TOKEN_SETTINGS}."
        )
    return token


def _api_url(value: Any) -> str:
    if value is not None and not isinstance(value, str):
        raise ConfigError(
            f"api_url must be text such as {DEFAULT_API_URL}, not a {type(value).__name__}. Use {DEFAULT_API_URL} for "
            "CircleCI cloud or https://<your-host>/api for CircleCI server."
        )
    url = (value.strip() if isinstance(value, str) else "") or DEFAULT_API_URL
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or any(ch.isspace() for ch in url)
    ):
        raise ConfigError(
            f"api_url '{url}' is not a URL. Use {DEFAULT_API_URL} for CircleCI cloud or https://<your-host>/api for CircleCI server."
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"api_url must not carry a query, fragment or credentials; use https://{parts.hostname}/api.")
    path = parts.path.rstrip("/")
    if not path.endswith("/api"):
        raise ConfigError(
            f"api_url '{url}' must end with /api (the connector adds /v2/... itself), for example "
            f"{parts.scheme}://{parts.netloc}/api."
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"api_url '{url}' uses plain http to a host that is not this machine, which would send the API token "
            f"across the network unencrypted. Use https://{parts.netloc}{path}."
        )
    return f"{parts.scheme}://{parts.netloc}{path}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _list(raw: Mapping[str, Any], field: str) -> list[str]:
    value = raw.get(field) or []
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value) if part]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(
            f"{field} must be a list of slugs, for example [\"gh/acme\"]; got a {type(value).__name__}."
        )
    return [item.strip() for item in value if item.strip()]


def _slug(value: str, pattern: re.Pattern[str], field: str, example: str) -> str:
    slug = value.strip().strip("/")
    if not pattern.match(slug):
        raise ConfigError(
            f"{field} entry '{value}' is not a CircleCI slug. Write it as it appears in CircleCI URLs, for example "
            f"'{example}' (or 'circleci/<organisation-id>/...' for GitHub App and GitLab organisations)."
        )
    provider, rest = slug.split("/", 1)
    return f"{SHORT_PROVIDER.get(provider, provider)}/{rest}"


def _start_date(value: Any) -> Optional[str]:
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        if not _START_DATE.match(text):
            raise ValueError(text)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"start_date '{text}' is not an RFC 3339 date. Use a form like 2026-01-01 or 2026-01-01T00:00:00Z."
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    if parsed > datetime.now(timezone.utc):
        raise ConfigError(
            f"start_date '{text}' is in the future, so nothing could ever be read. Leave it empty to read all the history CircleCI holds, or pick a past date."
        )
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bounded_int(raw: Mapping[str, Any], field: str, default: int, low: int, high: int) -> int:
    value = raw.get(field)
    if value in (None, ""):
        return default
    fix = f"Set it to a whole number from {low} to {high}, or leave it empty for the default ({default})."
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().lstrip("-").isdigit():
        raise ConfigError(f"{field} must be a whole number; got '{str(value)[:40]}'. {fix}")
    number = int(str(value).strip())
    if not low <= number <= high:
        raise ConfigError(f"{field} is {number}, out of range. {fix}")
    return number


def org_slug_of_project(project_slug: str) -> str:
    """`gh/acme/api` -> `gh/acme`; `circleci/<org-id>/<project-id>` -> `circleci/<org-id>`."""
    return "/".join(project_slug.split("/")[:2])
