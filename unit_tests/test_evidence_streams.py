"""The deeper-evidence streams (users, job details and steps, pipeline configs, projects and their settings,
variables and keys, context variables and restrictions) read through the real source against a
requests-mock CircleCI: what each reads, what it never asks for, and the records it gives."""

from __future__ import annotations



from unit_tests.builders import (
    API,
    CircleCI,
    action,
    checkout_key,
    context,
    context_env_var,
    context_restriction,
    ids,
    job,
    job_details,
    organization,
    pipeline,
    pipeline_config,
    project,
    project_env_var,
    project_settings,
    read_streams,
    records_of,
    step,
    stream_states,
    timestamp,
    user,
    v1_build,
    workflow,
)


def _warnings(output) -> list[str]:
    return [m.log.message for m in output.logs if m.log.level.value == "WARN"]


# --- users ---------------------------------------------------------------------------------------------------


def test_users_are_read_once_per_sync_even_when_several_pipelines_name_them(circleci: CircleCI) -> None:
    ada, bob, cat = user("ada"), user("bob"), user("cat")
    circleci.collaborations(organization("gh/acme"))
    newer, older = pipeline(minutes_ago=5), pipeline(minutes_ago=30)
    newer_workflow = workflow(newer, started_by=bob["id"])
    older_workflow = workflow(older, "canceled", started_by=bob["id"], canceled_by=ada["id"])
    circleci.pages("/v2/pipeline", [newer, older], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{newer['id']}/workflow", [newer_workflow])
    circleci.pages(f"/v2/pipeline/{older['id']}/workflow", [older_workflow])
    circleci.pages(f"/v2/workflow/{newer_workflow['id']}/job", [job(newer_workflow, job_type="approval", approved_by=ada["id"])])
    circleci.pages(f"/v2/workflow/{older_workflow['id']}/job", [job(older_workflow, status="canceled", canceled_by=cat["id"])])
    for person in (ada, bob, cat):
        circleci.holds(f"/v2/user/{person['id']}", person)

    output = read_streams("users")

    assert not output.errors
    assert sorted(ids(records_of(output, "users"))) == sorted(ids([ada, bob, cat]))
    asked = circleci.requests_to("/v2/user/")
    assert sorted(asked) == sorted(f"{API}/v2/user/{person['id']}" for person in (ada, bob, cat))  # each once


def test_users_of_an_unfinished_workflow_are_read_but_its_jobs_are_not(circleci: CircleCI) -> None:
    ada = user("ada")
    circleci.collaborations(organization("gh/acme"))
    waiting = pipeline(minutes_ago=5)
    on_hold = workflow(waiting, "on_hold", started_by=ada["id"])
    circleci.pages("/v2/pipeline", [waiting], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{waiting['id']}/workflow", [on_hold])
    circleci.pages(f"/v2/workflow/{on_hold['id']}/job", [job(on_hold, job_type="approval")])  # answered, must not be asked
    circleci.holds(f"/v2/user/{ada['id']}", ada)

    output = read_streams("users")

    assert ids(records_of(output, "users")) == [ada["id"]]
    assert circleci.requests_to(f"/v2/workflow/{on_hold['id']}/job") == []


# --- job_details and job_steps ---------------------------------------------------------------------------------


def test_job_details_and_job_steps_skip_approval_jobs_and_jobs_that_never_got_a_number(circleci: CircleCI) -> None:
    circleci.collaborations(organization("bb/acme"))
    built = pipeline("bb/acme/api", minutes_ago=10)
    finished = workflow(built)
    numbered = job(finished, "test", job_number=11)
    gate = job(finished, "hold", job_type="approval", job_number=12)  # skipped for its type, even with a number
    blocked = job(finished, "deploy", status="blocked")
    del blocked["job_number"]  # a job that never ran has no number
    circleci.pages("/v2/pipeline", [built], {"org-slug": "bb/acme"})
    circleci.pages(f"/v2/pipeline/{built['id']}/workflow", [finished])
    circleci.pages(f"/v2/workflow/{finished['id']}/job", [numbered, gate, blocked])
    circleci.holds("/v2/project/bb/acme/api/job/11", job_details(numbered))
    circleci.holds("/v1.1/project/bitbucket/acme/api/11", v1_build(numbered, step("Run tests", action("Run tests"))))
    circleci.holds("/v2/project/bb/acme/api/job/12", job_details(gate))  # answered, must not be asked
    circleci.holds("/v1.1/project/bitbucket/acme/api/12", v1_build(gate))

    output = read_streams("job_details", "job_steps")

    assert not output.errors
    keys = {"job_id": numbered["id"], "project_slug": "bb/acme/api", "workflow_id": finished["id"], "pipeline_id": built["id"]}
    assert [{k: d[k] for k in ("number", *keys)} for d in records_of(output, "job_details")] == [{"number": 11, **keys}]
    assert [{k: s[k] for k in ("job_number", *keys)} for s in records_of(output, "job_steps")] == [{"job_number": 11, **keys}]
    assert circleci.requests_to("/v2/project/") == [f"{API}/v2/project/bb/acme/api/job/11"]
    assert circleci.requests_to("/v1.1/") == [f"{API}/v1.1/project/bitbucket/acme/api/11"]


def test_job_details_and_job_steps_are_not_read_for_a_workflow_that_has_not_finished(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    started = pipeline(minutes_ago=2)
    running = workflow(started, "running")
    still_running = job(running, "test", status="running", job_number=5)
    circleci.pages("/v2/pipeline", [started], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{started['id']}/workflow", [running])
    # Answered, so a connector that asked would get them: none of them may be asked.
    circleci.pages(f"/v2/workflow/{running['id']}/job", [still_running])
    circleci.holds("/v2/project/gh/acme/api/job/5", job_details(still_running))
    circleci.holds("/v1.1/project/github/acme/api/5", v1_build(still_running, step("Run tests")))

    output = read_streams("job_details", "job_steps")

    assert not output.errors
    assert records_of(output, "job_details") == [] and records_of(output, "job_steps") == []
    assert circleci.requests_to(f"/v2/workflow/{running['id']}/job") == []
    assert circleci.requests_to("/job/5") == [] and circleci.requests_to("/v1.1/") == []


# --- pipeline_configs ------------------------------------------------------------------------------------------


def test_pipeline_configs_are_read_only_for_pipelines_no_earlier_sync_processed(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    new, processed = pipeline(minutes_ago=10), pipeline(minutes_ago=120)
    new_config, processed_config = pipeline_config("version: 2.1 # new\n"), pipeline_config("version: 2.1 # old\n")
    circleci.pages("/v2/pipeline", [new, processed], {"org-slug": "gh/acme"})
    circleci.holds(f"/v2/pipeline/{new['id']}/config", new_config)
    circleci.holds(f"/v2/pipeline/{processed['id']}/config", processed_config)  # answered, must not be asked
    earlier_sync = {"server_time": timestamp(60), "feeds": {"gh/acme": {"done": [[None, timestamp(60)]], "pending": []}}}

    output = read_streams("pipeline_configs", state=stream_states(pipeline_configs=earlier_sync))

    assert not output.errors
    assert records_of(output, "pipeline_configs") == [{**new_config, "pipeline_id": new["id"], "project_slug": "gh/acme/api"}]
    assert circleci.requests_to("/config") == [f"{API}/v2/pipeline/{new['id']}/config"]


# --- projects and their settings, variables and checkout keys -----------------------------------------------------


def test_each_readable_project_is_read_once_with_its_settings_path_and_a_restricted_one_is_skipped_with_a_warning(
    circleci: CircleCI,
) -> None:
    # v2 slug -> the settings endpoint's {provider}/{org}/{project}
    readable = {"gh/acme/api": "github/acme/api", "bb/beta/web": "bitbucket/beta/web", "circleci/o-1/p-1": "circleci/o-1/p-1"}
    secret = "gh/acme/secret"
    circleci.collaborations(organization("gh/acme"), organization("bb/beta"), organization("circleci/o-1"))
    circleci.pages(
        "/v2/pipeline",
        [pipeline("gh/acme/api", minutes_ago=1), pipeline(secret, minutes_ago=2), pipeline("gh/acme/api", minutes_ago=3)],
        {"org-slug": "gh/acme"},
    )
    circleci.pages("/v2/pipeline", [pipeline("bb/beta/web", minutes_ago=4)], {"org-slug": "bb/beta"})
    circleci.pages("/v2/pipeline", [pipeline("circleci/o-1/p-1", minutes_ago=5)], {"org-slug": "circleci/o-1"})
    projects = {slug: project(slug) for slug in readable}
    keys = {slug: checkout_key() for slug in readable}
    for slug, settings_path in readable.items():
        circleci.holds(f"/v2/project/{slug}", projects[slug])
        circleci.holds(f"/v2/project/{settings_path}/settings", project_settings(build_fork_prs=slug.startswith("bb/")))
        circleci.pages(f"/v2/project/{slug}/envvar", [project_env_var("DEPLOY_TOKEN")])
        circleci.pages(f"/v2/project/{slug}/checkout-key", [keys[slug]])
    circleci.answer(f"/v2/project/{secret}", 403, {"message": "Permission denied"})
    # Answered, so a connector that asked would get them: none of them may be asked.
    circleci.holds("/v2/project/github/acme/secret/settings", project_settings())
    circleci.pages(f"/v2/project/{secret}/envvar", [project_env_var("LEAKED")])
    circleci.pages(f"/v2/project/{secret}/checkout-key", [checkout_key()])

    output = read_streams("projects", "project_settings", "project_env_vars", "project_checkout_keys")

    assert not output.errors
    assert sorted(ids(records_of(output, "projects"))) == sorted(ids(projects.values()))
    settings = {s["project_slug"]: s for s in records_of(output, "project_settings")}
    assert sorted(settings) == sorted(readable) and len(records_of(output, "project_settings")) == len(readable)
    assert settings["bb/beta/web"]["build_fork_prs"] is True and settings["gh/acme/api"]["disable_ssh"] is True
    assert sorted((v["project_slug"], v["name"]) for v in records_of(output, "project_env_vars")) == sorted(
        (slug, "DEPLOY_TOKEN") for slug in readable
    )
    assert sorted((k["project_slug"], k["fingerprint"]) for k in records_of(output, "project_checkout_keys")) == sorted(
        (slug, key["fingerprint"]) for slug, key in keys.items()
    )
    urls = circleci.urls()
    for slug, settings_path in readable.items():  # each asked once, however many pipelines and streams name it
        assert urls.count(f"{API}/v2/project/{slug}") == 1
        assert urls.count(f"{API}/v2/project/{settings_path}/settings") == 1
    assert circleci.requests_to("secret") == [f"{API}/v2/project/{secret}"]
    assert any(secret in w and "403" in w for w in _warnings(output))


# --- context_env_vars and context_restrictions -------------------------------------------------------------------


def test_context_env_vars_and_restrictions_cover_every_context_of_every_organisation(circleci: CircleCI) -> None:
    acme, beta = organization("gh/acme"), organization("gh/beta")
    contexts = {"gh/acme": [context("prod"), context("staging")], "gh/beta": [context("release")]}
    circleci.collaborations(acme, beta)
    for org in (acme, beta):
        circleci.pages("/v2/context", contexts[org["slug"]], {"owner-id": org["id"]})
    restrictions = {}
    for each in contexts["gh/acme"] + contexts["gh/beta"]:
        restrictions[each["id"]] = context_restriction(each)
        circleci.pages(f"/v2/context/{each['id']}/environment-variable", [context_env_var(each, "AWS_ACCESS_KEY_ID")])
        circleci.pages(f"/v2/context/{each['id']}/restrictions", [restrictions[each["id"]]])

    output = read_streams("context_env_vars", "context_restrictions")

    assert not output.errors
    every_context = sorted((c["id"], org) for org, listed in contexts.items() for c in listed)
    assert sorted((v["context_id"], v["org_slug"]) for v in records_of(output, "context_env_vars")) == every_context
    restricted = records_of(output, "context_restrictions")
    assert sorted((r["context_id"], r["org_slug"]) for r in restricted) == every_context
    assert sorted(ids(restricted)) == sorted(ids(restrictions.values()))


# --- job_steps records ---------------------------------------------------------------------------------------------


def test_each_v1_step_becomes_one_record_with_its_index_name_and_actions_and_the_jobs_keys(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    built = pipeline(minutes_ago=10)
    finished = workflow(built)
    tested = job(finished, "test", job_number=7)
    ran = [action("Run tests", bash_command="make test")]
    circleci.pages("/v2/pipeline", [built], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{built['id']}/workflow", [finished])
    circleci.pages(f"/v2/workflow/{finished['id']}/job", [tested])
    circleci.holds("/v1.1/project/github/acme/api/7", v1_build(tested, step("Spin up environment"), step("Run tests", *ran)))

    output = read_streams("job_steps")

    keys = {"job_id": tested["id"], "job_number": 7, "project_slug": "gh/acme/api", "workflow_id": finished["id"], "pipeline_id": built["id"]}
    assert sorted(records_of(output, "job_steps"), key=lambda r: r["step_index"]) == [
        {"step_index": 0, "name": "Spin up environment", "actions": [], **keys},
        {"step_index": 1, "name": "Run tests", "actions": ran, **keys},
    ]


def test_a_v1_build_without_steps_gives_no_job_steps_records(circleci: CircleCI) -> None:
    circleci.collaborations(organization("gh/acme"))
    built = pipeline(minutes_ago=10)
    finished = workflow(built)
    empty, missing = job(finished, "lint", job_number=8), job(finished, "docs", job_number=9)
    circleci.pages("/v2/pipeline", [built], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{built['id']}/workflow", [finished])
    circleci.pages(f"/v2/workflow/{finished['id']}/job", [empty, missing])
    circleci.holds("/v1.1/project/github/acme/api/8", v1_build(empty))  # "steps": []
    circleci.holds("/v1.1/project/github/acme/api/9", v1_build(missing, with_steps_key=False))  # no "steps" at all

    output = read_streams("job_steps")

    assert not output.errors
    assert records_of(output, "job_steps") == []
    assert sorted(circleci.requests_to("/v1.1/")) == [f"{API}/v1.1/project/github/acme/api/8", f"{API}/v1.1/project/github/acme/api/9"]


def test_a_v1_build_answer_that_is_not_json_is_asked_again_never_half_parsed(circleci: CircleCI) -> None:
    # The v1.1 extractor used to drop such a body (no records); the client now retries it like a 5xx.
    circleci.collaborations(organization("gh/acme"))
    built = pipeline(minutes_ago=10)
    finished = workflow(built)
    tested = job(finished, "test", job_number=7)
    circleci.pages("/v2/pipeline", [built], {"org-slug": "gh/acme"})
    circleci.pages(f"/v2/pipeline/{built['id']}/workflow", [finished])
    circleci.pages(f"/v2/workflow/{finished['id']}/job", [tested])
    circleci.mocker.get(
        f"{API}/v1.1/project/github/acme/api/7",
        [{"status_code": 200, "content": b"<html>"}, {"status_code": 200, "json": v1_build(tested, step("Run tests"))}],
    )

    output = read_streams("job_steps")

    assert not output.errors
    assert [(s["step_index"], s["name"]) for s in records_of(output, "job_steps")] == [(0, "Run tests")]
    assert len(circleci.requests_to("/v1.1/")) == 2
