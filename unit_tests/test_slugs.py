"""Project slugs rewritten for the settings and v1.1 endpoints, for every slug form CircleCI uses."""

from __future__ import annotations

import pytest

from source_circleci_ccm.components.slugs import settings_project_path, v1_project_path

CIRCLECI_SLUG = "circleci/5e1a9b9c-0000-4c4c-9c9c-000000000000/0b6f3c1e-1111-4d4d-8e8e-222222222222"


@pytest.mark.parametrize(
    "slug, expected",
    [
        ("gh/acme/api", "github/acme/api"),
        ("bb/acme/api", "bitbucket/acme/api"),
        (CIRCLECI_SLUG, CIRCLECI_SLUG),
    ],
)
def test_settings_path_spells_the_provider_as_the_settings_endpoint_documents_it(slug: str, expected: str) -> None:
    assert settings_project_path(slug) == expected


@pytest.mark.parametrize(
    "slug, expected",
    [
        ("gh/acme/api", "github/acme/api"),
        ("bb/acme/api", "bitbucket/acme/api"),
        (CIRCLECI_SLUG, CIRCLECI_SLUG),
    ],
)
def test_v1_path_uses_the_vcs_type_segment_of_api_v1_1(slug: str, expected: str) -> None:
    assert v1_project_path(slug) == expected


@pytest.mark.parametrize("slug", ["github/acme/api", "bitbucket/acme/api"])
def test_long_provider_spellings_are_accepted_unchanged(slug: str) -> None:
    assert settings_project_path(slug) == slug
    assert v1_project_path(slug) == slug


def test_org_and_repo_keep_their_case() -> None:
    assert v1_project_path("gh/Acme-Corp/My.Repo") == "github/Acme-Corp/My.Repo"


@pytest.mark.parametrize("slug", ["gh/acme", "gl/acme/api", "gh//api", "gh/acme/api/extra", ""])
def test_a_string_that_is_not_a_project_slug_is_refused(slug: str) -> None:
    with pytest.raises(ValueError):
        v1_project_path(slug)
    with pytest.raises(ValueError):
        settings_project_path(slug)


def test_settings_and_v1_spellings_go_back_to_the_v2_slug() -> None:
    from source_circleci_ccm.components.slugs import v2_project_slug

    assert v2_project_slug("github/acme/api") == "gh/acme/api"
    assert v2_project_slug("bitbucket/acme/api") == "bb/acme/api"
    assert v2_project_slug("circleci/org-id/project-id") == "circleci/org-id/project-id"
