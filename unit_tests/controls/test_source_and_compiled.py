"""A config read from disk is resolved as CircleCI compiles it, so the CLI on the source and the stream on the
compiled form (as the API serves `compiled`) give the same results."""
import json
import textwrap

import yaml

from source_circleci_ccm.controls import evaluate_config
from source_circleci_ccm.controls.cli import main
from source_circleci_ccm.controls.config_model import build_model

SOURCE = textwrap.dedent("""
    version: 2.1
    orbs:
      snyk: snyk/snyk@2.0.0
    defaults: &defaults
      docker: [{image: cimg/python:3.12}]
    commands:
      scan-deps:
        parameters:
          tool: {type: string, default: pip-audit}
        steps:
          - run: << parameters.tool >> -r requirements.txt
      maybe-secrets:
        parameters:
          secrets: {type: boolean, default: false}
        steps:
          - when:
              condition: << parameters.secrets >>
              steps:
                - run: gitleaks detect --source .
          - unless:
              condition: << parameters.secrets >>
              steps:
                - run: checkov -d infra
    jobs:
      test:
        <<: *defaults
        parameters:
          python: {type: string, default: "3.12"}
        steps:
          - checkout
          - run:
              name: Unit tests on << parameters.python >>
              command: |
                pip install -r requirements.txt
                python -m pytest -q
      audit:
        <<: *defaults
        steps:
          - checkout
          - scan-deps
          - maybe-secrets:
              secrets: true
      deploy:
        <<: *defaults
        steps:
          - run: ./deploy.sh production
    workflows:
      main:
        jobs:
          - test:
              matrix: {parameters: {python: ["3.11", "3.12"]}}
          - audit
          - snyk/scan:
              docker-image-name: app:latest
          - hold: {type: approval, requires: [test, audit, snyk/scan]}
          - deploy: {requires: [hold], context: production}
""")

COMPILED = textwrap.dedent("""
    version: 2
    jobs:
      test-3.11:
        docker: [{image: cimg/python:3.12}]
        steps:
          - checkout
          - run: {name: Unit tests on 3.11, command: "pip install -r requirements.txt\\npython -m pytest -q\\n"}
      test-3.12:
        docker: [{image: cimg/python:3.12}]
        steps:
          - checkout
          - run: {name: Unit tests on 3.12, command: "pip install -r requirements.txt\\npython -m pytest -q\\n"}
      audit:
        docker: [{image: cimg/python:3.12}]
        steps:
          - checkout
          - run: {command: pip-audit -r requirements.txt}
          - run: {command: gitleaks detect --source .}
      snyk/scan:
        docker: [{image: cimg/node:lts}]
        steps:
          - run: {name: Install Snyk CLI, command: npm install -g snyk}
          - run: {name: Run Snyk, command: "snyk container test app:latest --severity-threshold=low"}
      deploy:
        docker: [{image: cimg/python:3.12}]
        steps:
          - run: {command: ./deploy.sh production}
    workflows:
      version: 2
      main:
        jobs:
          - test-3.11
          - test-3.12
          - audit
          - snyk/scan
          - hold: {type: approval, requires: [test-3.11, test-3.12, audit, snyk/scan]}
          - deploy: {requires: [hold], context: [production]}
""")


def test_cli_on_source_and_evaluation_of_compiled_config_agree(tmp_path, capsys, catalogue):
    path = tmp_path / "config.yml"
    path.write_text(SOURCE)
    main([str(path), "--json"])
    from_source = {c: r["status"] for c, r in json.loads(capsys.readouterr().out)[str(path)].items()}
    from_compiled = {c: r.status for c, r in evaluate_config(COMPILED, catalogue).items()}
    assert from_source == from_compiled
    expected_pass = {"dependency_scanning", "image_scanning", "secret_scanning", "automated_tests",
                     "approval_gate_before_deploy", "tests_before_deploy", "scans_before_deploy"}
    assert {c for c, s in from_source.items() if s == "pass"} == expected_pass
    assert from_source["iac_scanning"] == "fail"  # its `unless` branch is off for this invocation


def test_matrix_jobs_expand_and_requires_on_the_matrix_name_reaches_every_expansion(catalogue):
    results = evaluate_config(SOURCE, catalogue)
    ev = results["automated_tests"].evidence
    assert {e["job"] for e in ev} == {"test-3.11", "test-3.12"}
    assert {e["step"] for e in ev} == {"Unit tests on 3.11", "Unit tests on 3.12"}


def test_a_workflow_switched_by_a_pipeline_parameter_still_counts(catalogue):
    config = SOURCE.replace("  main:\n", "  main:\n    when: << pipeline.parameters.run-main >>\n")
    config = config.replace("orbs:\n", "parameters:\n  run-main: {type: boolean, default: false}\norbs:\n", 1)
    assert evaluate_config(config, catalogue)["secret_scanning"].status == "pass"


def test_a_workflow_switched_off_by_a_literal_condition_does_not_count(catalogue):
    config = SOURCE.replace("  main:\n", "  main:\n    when: false\n")
    assert evaluate_config(config, catalogue)["secret_scanning"].status == "fail"


MATRIX_NAMED_BY_VALUES = textwrap.dedent("""
    version: 2.1
    jobs:
      unit:
        parameters: {platform: {type: string}}
        docker: [{image: cimg/rust:1.75}]
        steps: [checkout, {run: cargo test}]
      package:
        parameters: {platform: {type: string}}
        docker: [{image: cimg/rust:1.75}]
        steps: [checkout, {run: cargo build --release}]
      publish:
        docker: [{image: cimg/node:lts}]
        steps: [checkout, {run: npm publish}]
    workflows:
      release:
        jobs:
          - unit:
              name: Unit tests (<< matrix.platform >>)
              matrix: {parameters: {platform: [linux, macos]}}
          - package:
              name: Package (<< matrix.platform >>)
              matrix: {parameters: {platform: [linux, macos]}}
              requires: ["Unit tests (<< matrix.platform >>)"]
          - publish:
              requires: ["Package (linux)", "Package (macos)"]
""")


def test_a_matrix_job_named_with_its_values_gets_them_filled_in_as_circleci_does():
    [workflow] = build_model(yaml.safe_load(MATRIX_NAMED_BY_VALUES)).workflows
    assert [job.name for job in workflow.jobs] == [
        "Unit tests (linux)", "Unit tests (macos)", "Package (linux)", "Package (macos)", "publish"]


def test_requires_on_the_filled_in_names_of_a_matrix_reach_the_expansions_and_their_own_requires(catalogue):
    [workflow] = build_model(yaml.safe_load(MATRIX_NAMED_BY_VALUES)).workflows
    assert [job.name for job in workflow.resolve("Package (macos)")] == ["Package (macos)"]
    assert [job.requires for job in workflow.jobs[2:4]] == [["Unit tests (linux)"], ["Unit tests (macos)"]]
    first_unit_test = workflow.first_upstream(lambda job: job.name if job.key == "unit" else None)
    assert first_unit_test[-1] == "Unit tests (linux)"
    assert evaluate_config(MATRIX_NAMED_BY_VALUES, catalogue)["tests_before_deploy"].status == "pass"


def test_a_matrix_expansion_is_named_by_its_parameters_in_the_order_of_their_names():
    config = """
        version: 2.1
        jobs:
          build:
            parameters: {version: {type: string}, platform: {type: string}}
            docker: [{image: cimg/base:current}]
            steps: [checkout]
        workflows:
          main:
            jobs:
              - build: {matrix: {parameters: {version: ["0.1"], platform: [macos, linux]}}}
        """
    [workflow] = build_model(yaml.safe_load(textwrap.dedent(config))).workflows
    assert [job.name for job in workflow.jobs] == ["build-macos-0.1", "build-linux-0.1"]  # as CircleCI names them


INLINE_ORB_SOURCE = textwrap.dedent("""
    version: 2.1
    orbs:
      ci:
        orbs:
          aws-cli: circleci/aws-cli@4.1
        executors:
          python: {docker: [{image: cimg/python:3.12}]}
        commands:
          unit-tests:
            parameters: {enabled: {type: boolean, default: true}}
            steps:
              - when:
                  condition: << parameters.enabled >>
                  steps: [{run: python -m pytest}]
        jobs:
          build:
            executor: python
            parameters: {unit_test: {type: boolean, default: true}}
            steps:
              - checkout
              - aws-cli/setup
              - unit-tests: {enabled: << parameters.unit_test >>}
              - run: docker push registry.example/app:latest
          scan:
            executor: python
            steps: [{run: trivy image registry.example/app:latest}]
    workflows:
      main:
        jobs:
          - ci/build
          - ci/scan: {requires: [ci/build]}
""")

INLINE_ORB_COMPILED = textwrap.dedent("""
    version: 2
    jobs:
      ci/build:
        docker: [{image: cimg/python:3.12}]
        steps:
          - checkout
          - run: {name: Install AWS CLI, command: ./install-aws-cli.sh}
          - run: {command: python -m pytest}
          - run: {command: docker push registry.example/app:latest}
      ci/scan:
        docker: [{image: cimg/python:3.12}]
        steps: [{run: {command: trivy image registry.example/app:latest}}]
    workflows:
      version: 2
      main:
        jobs:
          - ci/build
          - ci/scan: {requires: [ci/build]}
""")


def test_an_inline_orbs_jobs_commands_and_executors_are_read_as_circleci_compiles_them(catalogue):
    from_source = evaluate_config(INLINE_ORB_SOURCE, catalogue)
    from_compiled = evaluate_config(INLINE_ORB_COMPILED, catalogue)
    assert {c: r.status for c, r in from_source.items()} == {c: r.status for c, r in from_compiled.items()}
    assert from_source["automated_tests"].status == "pass"
    assert from_source["automated_tests"].evidence[0]["where"] == "orbs.ci.commands.unit-tests.steps[0].when.steps[0].run"
    assert from_source["image_scanning"].status == "pass" and from_source["tests_before_deploy"].status == "pass"


def test_an_inline_orb_job_told_to_skip_its_tests_runs_none(catalogue):
    config = INLINE_ORB_SOURCE.replace("- ci/build\n", "- ci/build: {unit_test: false}\n")
    assert evaluate_config(config, catalogue)["automated_tests"].status == "fail"


def test_an_inline_orbs_own_registry_orb_is_named_for_its_commands():
    [workflow] = build_model(yaml.safe_load(INLINE_ORB_SOURCE)).workflows
    setup = next(u for u in workflow.jobs[0].units if u.orb_ref == "aws-cli/setup")
    assert (setup.orb, setup.orb_version) == ("circleci/aws-cli", "4.1")
