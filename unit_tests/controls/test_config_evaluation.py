"""Behaviour of evaluate_config on source-form configs."""
import textwrap

import pytest

from source_circleci_ccm.controls import evaluate_config


def run(cfg, catalogue, **kw):
    return evaluate_config(textwrap.dedent(cfg), catalogue, **kw)


def test_imported_but_unused_orb_is_not_evidence(catalogue):
    r = run("""
        version: 2.1
        orbs:
          snyk: snyk/snyk@1.7.0
        jobs:
          build:
            docker: [{image: cimg/base:current}]
            steps: [checkout, {run: make}]
        workflows:
          main:
            jobs: [build]
        """, catalogue)
    assert r["dependency_scanning"].status == "fail"


def test_orb_command_step_is_evidence_with_orb_and_path(catalogue):
    r = run("""
        version: 2.1
        orbs:
          snyk: snyk/snyk@1.7.0
        jobs:
          scan:
            docker: [{image: cimg/base:current}]
            steps:
              - checkout
              - snyk/scan:
                  severity-threshold: high
        workflows:
          main:
            jobs: [scan]
        """, catalogue)
    result = r["dependency_scanning"]
    assert result.status == "pass"
    ev = result.evidence[0]
    assert ev["where"] == "jobs.scan.steps[1]"
    assert ev["orb"] == "snyk/snyk" and ev["rule_id"] == "sca.snyk-orb" and ev["job"] == "scan"


def test_orb_job_invoked_in_workflow_is_evidence(catalogue):
    r = run("""
        version: 2.1
        orbs:
          sonarcloud: sonarsource/sonarcloud@2.0.0
        workflows:
          main:
            jobs:
              - sonarcloud/scan
        """, catalogue)
    assert r["sast"].status == "pass"
    assert r["sast"].evidence[0]["where"] == "workflows.main.jobs[0]"


def test_job_defined_but_not_in_any_workflow_does_not_count(catalogue):
    r = run("""
        version: 2.1
        jobs:
          audit:
            docker: [{image: node:20}]
            steps: [{run: npm audit --audit-level=high}]
          build:
            docker: [{image: node:20}]
            steps: [{run: npm ci}]
        workflows:
          main:
            jobs: [build]
        """, catalogue)
    assert r["dependency_scanning"].status == "fail"


def test_npm_ci_no_audit_is_not_a_scan(catalogue):
    r = run("""
        version: 2.1
        jobs:
          build:
            docker: [{image: node:20}]
            steps: [{run: npm ci --no-audit}]
        workflows:
          main: {jobs: [build]}
        """, catalogue)
    assert r["dependency_scanning"].status == "fail"


def test_plain_linter_is_not_sast(catalogue):
    r = run("""
        version: 2.1
        jobs:
          lint:
            docker: [{image: node:20}]
            steps: [{run: npx eslint . && golangci-lint run && rubocop}]
        workflows:
          main: {jobs: [lint]}
        """, catalogue)
    assert r["sast"].status == "fail"


def test_local_command_is_expanded_with_its_path(catalogue):
    r = run("""
        version: 2.1
        commands:
          security:
            steps:
              - run: {name: Bandit, command: bandit -r src}
        jobs:
          build:
            docker: [{image: python:3.12}]
            steps: [checkout, security]
        workflows:
          main: {jobs: [build]}
        """, catalogue)
    assert r["sast"].status == "pass"
    assert r["sast"].evidence[0]["where"] == "commands.security.steps[0].run"
    assert r["sast"].evidence[0]["job"] == "build"


def test_yaml_anchors_and_merge_keys_are_supported(catalogue):
    r = run("""
        version: 2.1
        defaults: &defaults
          docker: [{image: python:3.12}]
        test_step: &test_step
          run: {name: Unit tests, command: pytest -q}
        jobs:
          test:
            <<: *defaults
            steps: [checkout, *test_step]
        workflows:
          main: {jobs: [test]}
        """, catalogue)
    assert r["automated_tests"].status == "pass"


def test_prodsec_security_scans_iac_disabled_turns_off_iac_only(catalogue):
    r = run("""
        version: 2.1
        orbs:
          prodsec: snyk/prodsec-orb@1
        jobs:
          scans:
            docker: [{image: cimg/base:current}]
            steps:
              - prodsec/security_scans:
                  iac-scan: disabled
        workflows:
          main: {jobs: [scans]}
        """, catalogue)
    assert r["dependency_scanning"].status == "pass"
    assert r["sast"].status == "pass"
    assert r["iac_scanning"].status == "fail"


def test_scheduled_security_workflow_counts_for_scan_controls(catalogue):
    r = run("""
        version: 2.1
        jobs:
          audit:
            docker: [{image: node:20}]
            steps: [{run: npm audit --audit-level=high}]
        workflows:
          nightly:
            triggers:
              - schedule: {cron: "0 0 * * *", filters: {branches: {only: [main]}}}
            jobs: [audit]
        """, catalogue)
    assert r["dependency_scanning"].status == "pass"


def test_setup_config_scans_are_unknown(catalogue):
    r = run("""
        version: 2.1
        setup: true
        orbs:
          continuation: circleci/continuation@1
        workflows:
          setup:
            jobs:
              - continuation/continue: {configuration_path: .circleci/main.yml}
        """, catalogue)
    assert r["sast"].status == "unknown"
    assert "setup" in r["sast"].reason


def test_results_carry_frameworks_and_catalogue_version(catalogue):
    r = run("""
        version: 2.1
        jobs:
          build: {docker: [{image: x}], steps: [{run: gitleaks detect}]}
        workflows:
          main: {jobs: [build]}
        """, catalogue)
    result = r["secret_scanning"]
    assert result.catalogue_version == catalogue.version
    assert {"framework": "ISO/IEC 27001:2022", "id": "A.5.17"}.items() <= result.frameworks[2].items()
    assert catalogue.frameworks("secret_scanning") == result.frameworks


def test_matched_text_is_trimmed(catalogue):
    long_cmd = "semgrep ci " + "--exclude x " * 100
    r = run(f"""
        version: 2.1
        jobs:
          build: {{docker: [{{image: x}}], steps: [{{run: "{long_cmd}"}}]}}
        workflows:
          main: {{jobs: [build]}}
        """, catalogue)
    assert len(r["sast"].evidence[0]["matched"]) <= 200


def test_compiled_config_with_expanded_orb_steps_is_recognised(catalogue):
    r = run("""
        version: 2
        jobs:
          sonarcloud/scan:
            docker: [{image: cimg/openjdk:17.0}]
            steps:
              - run: {name: SonarCloud, command: "sonar-scanner -Dsonar.host.url=https://sonarcloud.io"}
          grype/scan-image:
            docker: [{image: cimg/base:current}]
            steps:
              - run: {name: Scan image, command: "grype docker:myorg/app:latest --fail-on high"}
        workflows:
          version: 2
          main:
            jobs:
              - sonarcloud/scan
              - grype/scan-image: {requires: [sonarcloud/scan]}
        """, catalogue)
    assert r["sast"].status == "pass"
    assert r["sast"].evidence[0]["where"] == "jobs.sonarcloud/scan.steps[0].run"
    assert r["image_scanning"].status == "pass"


def test_a_scanner_run_through_a_variable_named_for_its_build_tool_is_evidence(catalogue):
    r = run("""
        version: 2.1
        jobs:
          audit:
            docker: [{image: cimg/rust:1.75}]
            steps:
              - run: echo 'export CARGO=$(rustup which cargo)' >> $BASH_ENV
              - run: $CARGO $CARGOFLAGS audit --deny-warnings
        workflows:
          main: {jobs: [audit]}
        """, catalogue)
    assert r["dependency_scanning"].status == "pass"
    assert r["dependency_scanning"].evidence[0]["rule_id"] == "kb.cargo-audit"


def _one_job(name: str, steps: str) -> str:
    return f"""
        version: 2.1
        jobs:
          job:
            docker: [{{image: cimg/go:1.21}}]
            steps: {steps}
        workflows:
          main:
            jobs:
              - job: {{name: {name}}}
        """


def test_a_job_named_as_tests_that_calls_a_build_scripts_test_subcommand_runs_tests(catalogue):
    result = run(_one_job("unit-test", "[checkout, {run: go run build/ci.go test}]"), catalogue)["automated_tests"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "tests.named-job-script-test"


def test_a_build_scripts_test_subcommand_in_a_job_not_named_for_tests_is_not_credited(catalogue):
    assert run(_one_job("build", "[checkout, {run: go run build/ci.go test}]"), catalogue)["automated_tests"].status == "fail"


def test_deploying_to_an_environment_called_test_is_not_a_test_run(catalogue):
    steps = "[checkout, {run: {name: Deploy to test, command: ./bin/deploy.sh test}}]"
    assert run(_one_job("deploy-test", steps), catalogue)["automated_tests"].status == "fail"


@pytest.mark.parametrize("command", [
    "coverage run -m unittest discover -s tests", "docker run \"$(./image)\" /tests/tests.sh",
    "docker compose run --rm api pytest", "c8 node --test",
])
def test_tests_run_through_a_wrapper_or_in_a_container_are_automated_tests(command, catalogue):
    result = run(_one_job("build", f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "tests.runner-command"


@pytest.mark.parametrize("command", [
    # each runner's own documented test command
    "python setup.py test", "python3 runtests.py", "bash -e ./ci/run-tests.sh", "trial mypackage", "robot tests/",
    "hatch test", "npm run cy:run", "yarn jest --ci", "pnpm -r test", "pnpm --filter ./packages/** test",
    "yarn workspaces foreach -A run test", "npx nx run-many --target=test", "nx affected -t lint,test", "richgo test ./...",
    "cargo tarpaulin --out Xml", "cargo llvm-cov --lcov", "clojure -M:test", "rebar3 eunit", "rebar3 ct", "composer test",
    "composer run-script test", "vendor/bin/codecept run", "vendor/bin/behat", "cmake --build build --target test",
    "meson test -C build", "ninja -C build test", "R CMD check .", "julia --project -e 'using Pkg; Pkg.test()'",
    "npx elm-test", "busted", "prove -lr t", "forge test", "npx hardhat test", "truffle test", "terraform test",
    "shellspec", "kitchen test", "molecule test", "helm unittest chart/", "ember test", "react-scripts test --watchAll=false",
    "vue-cli-service test:unit", "ant test", "container-structure-test test --image app --config t.yaml",
    "mage test", "mage test:unit", "make api.test", "./bin/mage ci:test", "go run mage.go test", "task test:integration", "task test", "just test", "earthly +test", "dagger call test", "inv test", "spin test",
    "script/cibuild", "script/test", "make -j4 parallel_test", "make -j1 tests/test_search.py", "scripts/ci_tests.sh",
    "composer functional", "npm run acceptance", "inspec exec profiles/cis-docker", "goss validate", "dgoss run app:1",
    # build lifecycles whose documented phases run the tests (maven.apache.org/guides/introduction/
    # introduction-to-the-lifecycle.html; Gradle's `build` depends on `check`, which depends on `test`)
    "mvn -B package", "./mvnw clean install", "./gradlew build", "./gradlew connectedCheck", "./gradlew koverVerify",
    "circleci tests run --command='xargs npx jest' --split-by=timings", "lein midje", "bin/kaocha", "elixir -S mix test",
    "pants test ::", "buck2 test //...", "yarn lerna run test", "pnpm turbo run test", "yarn --cwd client test",
    "docker compose -f docker-compose.test.yml up --exit-code-from tests", "vendor/bin/phpspec run", "luarocks test",
    "nimble test", "crystal spec", "./mill __.test", "scala-cli test .", "python setup.py nosetests",
])
def test_documented_test_runners_run_the_test_suite(command, catalogue):
    result = run(_one_job("build", f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "tests.runner-command"


@pytest.mark.parametrize("command", ["make deploy-test", "task deploy:test", "mage release:test",
                                     "mvn -B package -DskipTests", "./gradlew build -x test"])
def test_a_call_that_skips_its_tests_or_deploys_to_a_test_environment_is_not_a_test_run(command, catalogue):
    assert run(_one_job("build", f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"].status == "fail"


@pytest.mark.parametrize("command", [
    "terraform workspace select test", "yarn add jest", "npm install --save-dev mocha", "helm upgrade app ./chart --set env=test",
    "test -f build/app.jar", "k6 run load.js", "composer install", "task deploy", "bash ./scripts/deploy.sh test",
    "./scripts/deploy_test.sh", "make build-test-image",
])
def test_commands_that_only_mention_tests_do_not_run_a_test_suite(command, catalogue):
    assert run(_one_job("build", f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"].status == "fail"


_ORB_REPOSITORY = """
    version: 2.1
    parameters:
      dev-orb-version: {{type: string, default: "dev:alpha"}}
    orbs:
      my-orb: example/my-orb@{version}
      orb-tools: circleci/orb-tools@10.1.0
    workflows:
      integration-tests:
        jobs:
          - orb-tools/pack
          - my-orb/scan
    """


@pytest.mark.parametrize("version", ["dev:alpha", "<<pipeline.parameters.dev-orb-version>>", "dev:<< pipeline.git.revision >>"])
def test_running_an_orb_at_its_development_version_is_its_integration_test(version, catalogue):
    result = run(_ORB_REPOSITORY.format(version=version), catalogue)["automated_tests"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "tests.orb-integration-test"
    assert result.evidence[0]["matched"] == "my-orb/scan"


def test_running_a_released_orb_is_not_a_test(catalogue):
    assert run(_ORB_REPOSITORY.format(version="1.4.2"), catalogue)["automated_tests"].status == "fail"


_SWITCHED_OFF = """
    version: 2.1
    jobs:
      unit:
        docker: [{{image: cimg/node:20.0}}]
        steps: [checkout, {{run: npm test}}]
      ship:
        docker: [{{image: cimg/node:20.0}}]
        steps: [checkout, {{run: npx vercel deploy --prod}}]
    workflows:
      main:
        jobs:
          - unit:
              filters: {filters}
          - ship:
              requires: [unit]
    """


def test_a_job_no_branch_or_tag_can_start_and_the_jobs_requiring_it_do_not_run(catalogue):
    results = run(_SWITCHED_OFF.format(filters="{branches: {ignore: /.*/}}"), catalogue, include_deploy=True)
    assert results["automated_tests"].status == "fail"
    assert results["tests_before_deploy"].status == "not_applicable"


@pytest.mark.parametrize("filters", ["{branches: {ignore: /.*/}, tags: {only: /^v.*/}}",
                                     "{branches: {ignore: /.*/}, tags: {ignore: /^latest$/}}",
                                     "{branches: {ignore: main}}"])
def test_a_job_some_tag_or_branch_can_start_runs(filters, catalogue):
    assert run(_SWITCHED_OFF.format(filters=filters), catalogue)["automated_tests"].status == "pass"


def test_steps_handed_to_an_orb_job_run_in_that_job(catalogue):
    config = """
        version: 2.1
        orbs: {build: example/sbt-build@3.1.0}
        workflows:
          main:
            jobs:
              - build/sbt:
                  name: compile
                  cmd: sbt compile
                  steps:
                    - run: {name: Unit testing, command: sbt test}
        """
    result = run(config, catalogue)["automated_tests"]
    assert result.status == "pass"
    assert result.evidence[0]["job"] == "compile" and result.evidence[0]["where"].startswith("workflows.main.jobs[0].steps")


def test_an_orb_job_parameter_that_is_a_plain_list_is_not_read_as_steps(catalogue):
    config = """
        version: 2.1
        orbs: {build: example/sbt-build@3.1.0}
        workflows:
          main:
            jobs:
              - build/sbt: {tags: [test, spec]}
        """
    assert run(config, catalogue)["automated_tests"].status == "fail"


@pytest.mark.parametrize("command, credited", [
    ("docker build --target test -t app:test .", True), ("docker buildx build --target=unit-tests .", True),
    ("docker build --target latest .", False), ("docker build --target testing-tools .", False),
    # a stage that packages integration tests into an image to run later is not a test run yet
    ("docker buildx build --target integration-tests -t app-it .", False),
    ("docker build -t app .", False),
])
def test_building_a_dockerfile_stage_named_for_tests_runs_tests(command, credited, catalogue):
    result = run(_one_job("build", f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"]
    assert (result.status == "pass") is credited


@pytest.mark.parametrize("args, credited", [("--target tests", True), ("--target generic --build-arg v=1", False)])
def test_the_docker_orb_building_a_test_stage_runs_tests(args, credited, catalogue):
    config = f"""
        version: 2.1
        orbs: {{docker: circleci/docker@2.2.0}}
        jobs:
          job:
            machine: {{image: ubuntu-2204:current}}
            steps: [checkout, {{docker/build: {{image: org/app, extra_build_args: {args}}}}}]
        workflows:
          main: {{jobs: [job]}}
        """
    assert (run(config, catalogue)["automated_tests"].status == "pass") is credited


@pytest.mark.parametrize("name, credited", [
    ("Gatling Load Test", False), ("Run performance tests", False), ("k6 stress test", False),
    ("Run integration tests", True), ("Unit Test", True),
])
def test_a_load_or_performance_test_step_is_not_a_test_suite(name, credited, catalogue):
    steps = f"[checkout, {{run: {{name: {name}, command: ./ci/run.sh}}}}]"
    assert (run(_one_job("check", steps), catalogue)["automated_tests"].status == "pass") is credited


def test_a_scanner_task_forwarded_by_a_project_script_to_its_build_tool_is_a_scan(catalogue):
    steps = "[checkout, {run: {name: Check deps, command: ./project.rb gradle dependencyCheckAnalyze --info}}]"
    result = run(_one_job("deps", steps), catalogue)["dependency_scanning"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "kb.owasp-dependency-check"


def test_pre_and_post_steps_a_workflow_gives_a_job_run_in_that_job(catalogue):
    # CircleCI 2.1: any workflow job takes `pre-steps` and `post-steps`, run before and after its own steps
    config = """
        version: 2.1
        jobs:
          suite:
            docker: [{image: cimg/php:8.3}]
            steps: [checkout, {run: composer -n integration -- --log-junit /tmp/results/junit.xml}]
          deploy:
            docker: [{image: cimg/base:current}]
            steps: [checkout, {run: make release}]
        workflows:
          main:
            jobs:
              - suite:
                  pre-steps: [{run: mkdir -p /tmp/results}]
                  post-steps:
                    - store_test_results: {path: /tmp/results}
              - deploy:
                  requires: [suite]
                  pre-steps: [{run: {name: Run unit tests, command: composer unit}}]
        """
    result = run(config, catalogue)["automated_tests"]
    assert result.status == "pass"
    where = {e["where"] for e in result.evidence}
    assert "workflows.main.jobs[0].post-steps[0]" in where
    assert "workflows.main.jobs[1].pre-steps[0].run" in where


def test_a_job_without_pre_or_post_steps_has_only_its_own_steps(catalogue):
    config = """
        version: 2.1
        jobs:
          suite:
            docker: [{image: cimg/php:8.3}]
            steps: [checkout, {run: composer -n integration}]
        workflows:
          main:
            jobs:
              - suite: {post-steps: [echo, done]}
        """
    assert run(config, catalogue)["automated_tests"].status == "fail"


@pytest.mark.parametrize("command", ["./build.sh unit", "./scripts/ci.sh unit-tests", "python make.py test"])
def test_a_job_named_as_tests_that_calls_a_build_scripts_unit_subcommand_runs_tests(command, catalogue):
    result = run(_one_job("test", f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "tests.named-job-script-test"


def test_a_build_scripts_unit_subcommand_in_a_job_not_named_for_tests_is_not_credited(catalogue):
    assert run(_one_job("build", "[checkout, {run: ./build.sh unit}]"), catalogue)["automated_tests"].status == "fail"


@pytest.mark.parametrize("command, status", [
    ("rspec-test", "pass"), ("jest-tests", "pass"), ("phpunit_test", "pass"),
    ("rubocop-check", "fail"), ("install-deps", "fail"), ("deploy-test", "fail"),
])
def test_an_orb_command_named_for_a_test_runner_and_test_runs_tests(command, status, catalogue):
    config = f"""
        version: 2.1
        orbs: {{lang: example/lang@2.0.0}}
        jobs:
          job:
            docker: [{{image: cimg/ruby:3.2}}]
            steps: [checkout, lang/{command}]
        workflows:
          main: {{jobs: [job]}}
        """
    assert run(config, catalogue)["automated_tests"].status == status


def test_the_bats_orbs_run_job_runs_the_test_suite(catalogue):
    config = """
        version: 2.1
        orbs: {bats: circleci/bats@1.0}
        workflows:
          main:
            jobs: [{bats/run: {path: ./src/tests}}]
        """
    result = run(config, catalogue)["automated_tests"]
    assert result.status == "pass" and result.evidence[0]["rule_id"] == "tests.test-runner-orb"


def _orb_workflow(orb: str, job: str, params: str) -> str:
    return f"""
        version: 2.1
        orbs: {{tool: {orb}}}
        workflows:
          main:
            jobs: [{{tool/{job}: {params}}}]
        """


@pytest.mark.parametrize("orb, job, params, control, status", [
    ("acme/executor-tools@4", "dev-release", "{image: acme/app, snyk-scan: true}", "image_scanning", "pass"),
    ("acme/executor-tools@4", "dev-release", "{image: acme/app, docker-cve-scan: false}", "image_scanning", "fail"),
    ("acme/executor-tools@4", "dev-release", "{image: acme/app, cis-docker-image-scan: true}", "image_scanning", "fail"),
    ("acme/terraform@3", "static-analysis", "{trivy-scan: true}", "iac_scanning", "pass"),
    ("acme/executor-tools@4", "dev-release", "{image: acme/app, bats-test: true}", "automated_tests", "pass"),
    ("acme/executor-tools@4", "dev-release", "{image: acme/app, skip-tests: true}", "automated_tests", "fail"),
])
def test_an_orb_job_given_a_scan_or_test_switch_runs_it(orb, job, params, control, status, catalogue):
    assert run(_orb_workflow(orb, job, params), catalogue)[control].status == status


def test_tests_an_orb_job_runs_after_its_own_work_are_not_before_its_deploy(catalogue):
    config = _orb_workflow("circleci/terraform@3", "apply", "{after-apply: [{run: ./test/integration_tests.sh}]}")
    results = run(config, catalogue)
    assert results["automated_tests"].status == "pass" and results["tests_before_deploy"].status == "fail"
    before = _orb_workflow("circleci/terraform@3", "apply", "{pre-steps: [{run: ./test/integration_tests.sh}]}")
    assert run(before, catalogue)["tests_before_deploy"].status == "pass"


@pytest.mark.parametrize("job, command, status", [
    ("test", "./test/e2e/run.sh", "pass"),  # a job named for its tests says what its scripts do
    ("Run Tests", "test/run.sh", "pass"),
    ("terraform12-test", "bash scripts/ci_tests.sh", "pass"),
    ("load-test", "./scripts/k6.sh", "fail"),
    ("deploy-test", "./deploy.sh", "fail"),
    ("build", "./test/e2e/run.sh", "fail"),
])
def test_a_job_named_for_its_tests_that_runs_a_project_script_runs_tests(job, command, status, catalogue):
    assert run(_one_job(job, f"[checkout, {{run: {command!r}}}]"), catalogue)["automated_tests"].status == status


def test_a_step_named_for_building_testing_and_publishing_runs_tests(catalogue):
    steps = "[checkout, {run: {name: 'Build tagged image, test it, publish it', command: ./build_test_publish.sh}}]"
    assert run(_one_job("build-test-publish", steps), catalogue)["automated_tests"].status == "pass"


@pytest.mark.parametrize("version, orb_tools, status", [
    ("dev:alpha", "orb-tools: circleci/orb-tools@10, ", "pass"),
    ("dev:${CIRCLE_SHA1:0:7}", "orb-tools: circleci/orb-tools@12, ", "pass"),
    ("dev:latest", "orb-tools: circleci/orb-tools@10, ", "fail"),
    ("dev:alpha", "", "fail"),  # a project using an orb's development version is not the orb's repository
])
def test_only_the_development_versions_orb_tools_publishes_are_an_orbs_integration_test(version, orb_tools, status,
                                                                                      catalogue):
    config = f"""
        version: 2.1
        orbs: {{{orb_tools}kube: 'acme/kube-ops@{version}'}}
        jobs:
          build:
            docker: [{{image: cimg/base:current}}]
            steps: [checkout, kube/packages]
        workflows:
          main: {{jobs: [build]}}
        """
    assert run(config, catalogue)["automated_tests"].status == status


@pytest.mark.parametrize("step, status", [
    ("Docker Compose & Run Tests", "pass"), ("Build, test, push image to dockerhub", "pass"),
    ("Run Tests & Generate Gcovr Reports", "pass"), ("Install dependencies and run tests", "pass"),
    ("Build, push image", "fail"), ("Generate test reports", "fail"), ("Run tests then upload", "pass"),
    ("Install test dependencies and build", "fail"), ("Deploy and run load tests", "fail"),
    ("test healthz endpoint", "fail"), ("Run tests and a health check", "pass"),  # a probe that a service answers
])
def test_a_step_named_for_running_tests_among_other_work_runs_tests(step, status, catalogue):
    steps = f"[checkout, {{run: {{name: {step!r}, command: ./build.sh}}}}]"
    assert run(_one_job("build", steps), catalogue)["automated_tests"].status == status


def test_a_step_named_test_that_runs_a_scanner_is_that_scan_not_a_test_suite(catalogue):
    results = run(_one_job("lint", "[checkout, {run: {name: test code, command: bandit -r src}}]"), catalogue)
    assert results["sast"].status == "pass" and results["automated_tests"].status == "fail"


def test_an_orb_job_that_runs_tests_under_a_prefix_runs_tests(catalogue):
    assert run(_orb_workflow("cjw296/python-ci@5", "pip-run-tests", "{}"), catalogue)["automated_tests"].status == "pass"


@pytest.mark.parametrize("job, status", [("go_test_unit", "pass"), ("test-package", "pass"), ("go_test_sonar", "fail"),
                                         ("deploy-test-env", "fail"), ("phpunit", "pass"), ("cypress", "pass")])
def test_an_orb_job_named_test_and_what_it_tests_runs_tests(job, status, catalogue):
    assert run(_orb_workflow("acme/ci@1", job, "{}"), catalogue)["automated_tests"].status == status


@pytest.mark.parametrize("job, control", [("scan_dependencies", "dependency_scanning"), ("dependency-scan", "dependency_scanning"),
                                          ("scan_dockerfile", "iac_scanning"), ("terraform-scan", "iac_scanning")])
def test_an_orb_job_named_for_scanning_dependencies_or_infrastructure_code_is_that_scan(job, control, catalogue):
    assert run(_orb_workflow("acme/security@1", job, "{}"), catalogue)[control].status == "pass"


@pytest.mark.parametrize("step, status", [("Build test image", "pass"), ("Build Docker image (test environment)", "fail")])
def test_building_a_dockerfiles_test_stage_runs_tests_unless_the_step_says_it_builds_their_environment(step, status, catalogue):
    steps = f"[checkout, {{run: {{name: {step!r}, command: docker build --target test -t app:test .}}}}]"
    assert run(_one_job("build", steps), catalogue)["automated_tests"].status == status


@pytest.mark.parametrize("params, control, status", [
    ("{becommand: 'go test ./...'}", "automated_tests", "pass"),
    ("{test-command: 'npm audit --audit-level=high'}", "dependency_scanning", "pass"),
    ("{build_cmd: 'npm run build'}", "automated_tests", "fail"),
    ("{test-results: 'go test ./...'}", "automated_tests", "fail"),  # named for results, not a command
])
def test_a_command_handed_to_an_orb_job_is_read_as_the_job_runs_it(params, control, status, catalogue):
    assert run(_orb_workflow("acme/backend@1", "build", params), catalogue)[control].status == status


def test_a_command_handed_to_an_orb_command_is_read_in_its_step(catalogue):
    config = """
        version: 2.1
        orbs: {be: acme/backend@1}
        jobs:
          build:
            docker: [{image: cimg/base:current}]
            steps: [checkout, {be/run: {command: pytest -q}}]
        workflows:
          main: {jobs: [build]}
        """
    test = run(config, catalogue)["automated_tests"]
    assert test.status == "pass" and test.evidence[0]["where"] == "jobs.build.steps[1].command"
