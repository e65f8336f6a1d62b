"""Core streams read through the real source against a requests-mock CircleCI."""

from __future__ import annotations



from unit_tests.builders import (
    CircleCI,
    context,
    ids,
    job,
    organization,
    pipeline,
    read_streams,
    records_of,
    workflow,
)


def test_pipelines_are_read_over_every_page_of_every_organisation(circleci: CircleCI) -> None:
    acme, beta = organization("gh/acme"), organization("circleci/11111111-2222-3333-4444-555555555555")
    acme_pipelines = [pipeline("gh/acme/api", minutes_ago=i) for i in range(45)]
    beta_pipelines = [pipeline(f"{beta['slug']}/p1", minutes_ago=i) for i in range(21)]
    circleci.collaborations(acme, beta)
    circleci.pages("/v2/pipeline", acme_pipelines, {"org-slug": "gh/acme"})
    circleci.pages("/v2/pipeline", beta_pipelines, {"org-slug": beta["slug"]})

    records = records_of(read_streams("pipelines"), "pipelines")

    assert sorted(ids(records)) == sorted(ids(acme_pipelines + beta_pipelines))
    assert {r["org_slug"] for r in records if r["project_slug"] == "gh/acme/api"} == {"gh/acme"}
    assert len(circleci.requests_to("/v2/pipeline?")) == 3 + 2


def test_project_slugs_read_pipelines_per_project_instead_of_per_organisation(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    wanted = [pipeline("gh/acme/api", minutes_ago=i) for i in range(25)]
    circleci.pages("/v2/project/gh/acme/api/pipeline", wanted)

    records = records_of(read_streams("pipelines", config_overrides={"project_slugs": ["gh/acme/api"]}), "pipelines")

    assert sorted(ids(records)) == sorted(ids(wanted))
    assert circleci.requests_to("/v2/pipeline?") == []


def test_jobs_are_read_only_for_finished_workflows(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    done, running = pipeline(minutes_ago=30), pipeline(minutes_ago=5)
    finished, on_hold = workflow(done, "failed"), workflow(running, "on_hold")
    finished_jobs = [job(finished, f"step-{i}") for i in range(22)]  # two pages of jobs
    circleci.pages("/v2/pipeline", [running, done], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{done['id']}/workflow", [finished])
    circleci.pages(f"/v2/pipeline/{running['id']}/workflow", [on_hold])
    circleci.pages(f"/v2/workflow/{finished['id']}/job", finished_jobs)

    output = read_streams("workflows", "jobs")

    assert sorted(ids(records_of(output, "workflows"))) == sorted([finished["id"], on_hold["id"]])
    jobs = records_of(output, "jobs")
    assert sorted(ids(jobs)) == sorted(ids(finished_jobs))
    assert {(j["workflow_id"], j["pipeline_id"], j["project_slug"]) for j in jobs} == {
        (finished["id"], done["id"], "gh/acme/api")
    }
    assert circleci.requests_to(f"/v2/workflow/{on_hold['id']}/job") == []


def test_each_list_is_fetched_once_even_when_two_streams_need_it(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    pipelines = [pipeline(minutes_ago=i) for i in range(3)]
    circleci.pages("/v2/pipeline", pipelines, {"org-slug": "gh/acme"})
    for p in pipelines:
        w = workflow(p)
        circleci.pages(f"/v2/pipeline/{p['id']}/workflow", [w])
        circleci.pages(f"/v2/workflow/{w['id']}/job", [job(w)])

    read_streams("collaborations", "pipelines", "workflows", "jobs", "contexts")

    urls = [r.url for r in circleci.mocker.request_history]
    assert len(urls) == len(set(urls))


def test_collaborations_carry_vcs_type_whichever_spelling_the_server_uses(circleci: CircleCI) -> None:
    spec_spelling = {**organization("bb/beta"), "vcs-type": "bitbucket"}
    del spec_spelling["vcs_type"]
    circleci.collaborations(organization("gh/acme"), spec_spelling)

    records = records_of(read_streams("collaborations"), "collaborations")

    assert sorted(r["vcs_type"] for r in records) == ["bitbucket", "github"]
    assert all("vcs-type" not in r for r in records)


def test_contexts_carry_their_organisation_and_are_read_over_every_page(circleci: CircleCI) -> None:
    acme = organization("gh/acme")
    circleci.collaborations(acme)
    contexts = [context(f"ctx-{i}") for i in range(23)]
    circleci.pages("/v2/context", contexts, {"owner-id": acme["id"]})

    records = records_of(read_streams("contexts"), "contexts")

    assert sorted(ids(records)) == sorted(ids(contexts))
    assert {(r["org_slug"], r["org_id"]) for r in records} == {("gh/acme", acme["id"])}


def test_a_wrong_token_fails_as_a_config_error_that_says_how_to_regenerate_it(circleci: CircleCI) -> None:
    circleci.answer("/v2/me", 401, {"message": "You must log in first."})

    output = read_streams("me")

    error = output.errors[0].trace.error
    assert error.failure_type.value == "config_error"
    assert "Personal API Tokens" in error.message and "401" in error.message
    assert output.records == []


def test_a_restricted_project_is_skipped_with_a_warning_naming_it(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    open_one, secret = pipeline("gh/acme/api", minutes_ago=2), pipeline("gh/acme/secret", minutes_ago=1)
    circleci.pages("/v2/pipeline", [secret, open_one], {"org-slug": "gh/acme"})
    circleci.answer(f"/v2/pipeline/{secret['id']}/workflow", 403, {"message": "Permission denied"})
    visible = workflow(open_one)
    circleci.pages(f"/v2/pipeline/{open_one['id']}/workflow", [visible])

    output = read_streams("workflows")

    assert ids(records_of(output, "workflows")) == [visible["id"]]
    warnings = [m.log.message for m in output.logs if m.log.level.value == "WARN"]
    assert any("gh/acme/secret" in w and "team" in w for w in warnings)
    assert not output.errors
