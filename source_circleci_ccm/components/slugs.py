"""Project slugs as each CircleCI endpoint wants them.

API v2 names a project `gh/<org>/<repo>`, `bb/<org>/<repo>` or `circleci/<org-id>/<project-id>` (GitHub App
and GitLab projects). The project settings endpoint takes the provider as its first path segment and
documents `github`, `bitbucket` and `circleci` (it also accepts `gh`/`bb`); API v1.1 takes a VCS type
segment: `github`, `bitbucket`, or `circleci` for GitHub App/GitLab projects.
"""

from __future__ import annotations

SHORT_PROVIDER = {"github": "gh", "bitbucket": "bb"}
_LONG_PROVIDER = {"gh": "github", "github": "github", "bb": "bitbucket", "bitbucket": "bitbucket", "circleci": "circleci"}


def _split(project_slug: str) -> tuple[str, str, str]:
    parts = project_slug.strip().strip("/").split("/")
    if len(parts) != 3 or not all(parts) or parts[0].lower() not in _LONG_PROVIDER:
        raise ValueError(
            f"'{project_slug}' is not a CircleCI project slug (gh/<org>/<repo>, bb/<org>/<repo> or "
            "circleci/<organisation-id>/<project-id>)"
        )
    return _LONG_PROVIDER[parts[0].lower()], parts[1], parts[2]


def settings_project_path(project_slug: str) -> str:
    """`gh/acme/api` -> `github/acme/api`: the `{provider}/{organization}/{project}` of the settings endpoint."""
    return "/".join(_split(project_slug))


def v1_project_path(project_slug: str) -> str:
    """`bb/acme/api` -> `bitbucket/acme/api`: the `{vcs}/{org}/{repo}` of `/v1.1/project/.../{build_num}`."""
    return "/".join(_split(project_slug))


def v2_project_slug(path: str) -> str:
    """`github/acme/api` (as the settings and v1.1 endpoints spell it) -> `gh/acme/api`, as everywhere else."""
    provider, org, project = _split(path)
    return "/".join((SHORT_PROVIDER.get(provider, provider), org, project))
