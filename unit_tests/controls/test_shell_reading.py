"""A `run` step is read the way a shell reads it before any rule looks at it."""
import pytest

from source_circleci_ccm.controls.shell import commands, image_name


@pytest.mark.parametrize("run, expected", [
    ("set -e\npytest -q\nnpm audit", [("set", "-e"), ("pytest", "-q"), ("npm", "audit")]),
    ("make build && trivy image app; echo done | tee log", [("make", "build"), ("trivy", "image", "app"), ("echo", "done"), ("tee", "log")]),
    ("FOO=1 BAR='a b' sudo -E trivy fs .", [("trivy", "fs", ".")]),
    ("trivy image \\\n  --exit-code 1 \\\n  app", [("trivy", "image", "--exit-code", "1", "app")]),
    ("bash -c 'gitleaks detect --source . && echo ok'", [("gitleaks", "detect", "--source", "."), ("echo", "ok")]),
    ("sh -ec \"semgrep ci\"", [("semgrep", "ci")]),
    ("npx --yes snyk test", [("snyk", "test")]),
    ("yarn dlx audit-ci --high", [("audit-ci", "--high")]),
    ("pnpm exec jest --ci", [("jest", "--ci")]),
    ("bundle exec brakeman -q", [("brakeman", "-q")]),
    ("poetry run bandit -r src", [("bandit", "-r", "src")]),
    ("python3 -m pip_audit", [("pip_audit",)]),
    ("go run golang.org/x/vuln/cmd/govulncheck@latest ./...", [("govulncheck", "./...")]),
    ("java -jar /tmp/pipeline-scan.jar -f app.zip", [("pipeline-scan.jar", "-f", "app.zip")]),
    ("./node_modules/.bin/jest", [("jest",)]),
    ("yarn run snyk test", [("yarn", "run", "snyk", "test"), ("snyk", "test")]),
    ("env CI=true timeout 5m xargs -n1 tfsec", [("tfsec",)]),
    ("trivy fs . # trivy image app", [("trivy", "fs", ".")]),
    ("# gitleaks detect\necho hi", [("echo", "hi")]),
    ("(cd app && pytest)", [("cd", "app"), ("pytest",)]),
])
def test_run_is_split_into_simple_commands_with_wrappers_taken_off(run, expected):
    assert [c.argv for c in commands(run)] == expected


def test_docker_run_gives_the_image_and_the_arguments_passed_to_it():
    [command] = commands("docker run --rm -v $(pwd):/src -e X=1 docker.io/aquasec/trivy:0.50 fs /src")
    assert command.image == "aquasec/trivy" and command.argv == ("fs", "/src")


@pytest.mark.parametrize("reference, name", [
    ("aquasec/trivy", "aquasec/trivy"), ("aquasec/trivy:0.50.1", "aquasec/trivy"),
    ("ghcr.io/gitleaks/gitleaks:v8@sha256:abc", "gitleaks/gitleaks"), ("localhost:5000/x/y:1", "x/y"),
    ("hadolint/hadolint:latest-debian", "hadolint/hadolint"),
])
def test_image_names_drop_registry_tag_and_digest(reference, name):
    assert image_name(reference) == name


def test_unclosed_quote_reads_to_the_end_instead_of_failing():
    assert [c.argv for c in commands("echo 'oops\nsnyk test")] == [("echo", "oops\nsnyk test")]


@pytest.mark.parametrize("run, expected", [
    ("$CARGO $CARGOFLAGS audit --deny-warnings", ("cargo", "$CARGOFLAGS", "audit", "--deny-warnings")),
    ("${NPM} audit --audit-level=high", ("npm", "audit", "--audit-level=high")),
    ("$PYTHON -m bandit -r src", ("bandit", "-r", "src")),
])
def test_a_command_word_that_is_a_variable_named_for_a_known_program_runs_that_program(run, expected):
    [command] = commands(run, programs=frozenset({"cargo", "npm"}))
    assert command.argv == expected


def test_a_command_word_that_is_a_variable_named_for_no_known_program_stays_as_written():
    assert [c.argv for c in commands("$DEPLOY_SCRIPT prod", programs=frozenset({"cargo"}))] == [("$DEPLOY_SCRIPT", "prod")]


@pytest.mark.parametrize("run, expected", [
    ("coverage run -m unittest discover -s tests", [("unittest", "discover", "-s", "tests")]),
    ("coverage run --branch --source=app manage.py test", [("manage.py", "test")]),
    ("coverage report -m", [("coverage", "report", "-m")]),
    ("nyc --reporter lcov mocha", [("mocha",)]),
    ("c8 -r text node --test", [("node", "--test")]),
    ("xvfb-run -a npm test", [("npm", "test")]),
])
def test_a_test_runner_behind_a_coverage_or_display_wrapper_is_the_command(run, expected):
    assert [c.argv for c in commands(run)] == expected


@pytest.mark.parametrize("run, expected", [
    ("if [ -n \"$CI\" ]; then\n  npm audit --audit-level=high\nfi", [("[", "-n", "$CI", "]"), ("npm", "audit", "--audit-level=high")]),
    ("for d in api web; do (cd $d && pytest); done", [("cd", "$d"), ("pytest",)]),
    ("while ! curl -sf localhost:8080 >/dev/null 2>&1; do sleep 1; done", [("curl", "-sf", "localhost:8080", ">/dev/null", "2>&1"), ("sleep", "1")]),
    ("if snyk test; then echo ok; else exit 1; fi", [("snyk", "test"), ("echo", "ok"), ("exit", "1")]),
])
def test_the_reserved_words_of_if_for_and_while_leave_the_commands_they_run(run, expected):
    assert [c.argv for c in commands(run)] == expected


@pytest.mark.parametrize("run, expected", [
    ("docker compose run --rm -e CI=1 web pytest -x", [("pytest", "-x")]),
    ("docker-compose exec -T app bundle exec rspec", [("rspec",)]),
    ("docker exec -it ctr sh -c 'go test ./...'", [("go", "test", "./...")]),
    ("docker compose up -d", [("docker", "compose", "up", "-d")]),
    ("docker-compose -f docker-compose.test.yml run app bandit -r .", [("bandit", "-r", ".")]),
    ("docker compose --project-name ci -f a.yml run --rm api npm test", [("npm", "test")]),
    ("docker-compose -f ci.yml run api-tests", [("docker-compose", "-f", "ci.yml", "run", "api-tests")]),  # its own command
])
def test_a_command_run_in_a_compose_service_or_running_container_is_the_command(run, expected):
    assert [c.argv for c in commands(run)] == expected


def test_a_command_given_to_docker_run_is_read_as_a_command_with_its_image():
    [script] = commands("docker run \"$(./image-name)\" /tests/run-tests.sh")
    assert script.argv == ("run-tests.sh",)
    [inner] = commands("docker run --rm app:ci sh -c 'pytest -q'")
    assert inner.argv == ("pytest", "-q") and inner.image == "app"


@pytest.mark.parametrize("run, expected", [
    ("./project.rb gradle dependencyCheckAnalyze --info",
     [("project.rb", "gradle", "dependencyCheckAnalyze", "--info"), ("gradle", "dependencyCheckAnalyze", "--info")]),
    ("ci/with-env.sh npm test", [("with-env.sh", "npm", "test"), ("npm", "test")]),
    ("./deploy.sh production", [("deploy.sh", "production")]),
    ("./run.sh -x gradle", [("run.sh", "-x", "gradle")]),
])
def test_a_project_script_given_a_known_program_runs_that_program_too(run, expected):
    assert [c.argv for c in commands(run, programs=frozenset({"gradle", "npm"}))] == expected


@pytest.mark.parametrize("run, expected", [
    ("bash <(curl -s https://raw.githubusercontent.com/acme/gitleaks-ci/master/gitleaks.sh)",
     [("gitleaks.sh",), ("gitleaks",)]),
    ("bash <(curl -s -L https://vendor.example/detect8.sh) --x=1", [("detect8.sh", "--x=1")]),
    ('X=1 sh -c "$(curl -sSf -L https://vendor.example/image/script/trivy)"', [("trivy",)]),
    ("curl -sSL https://vendor.example/run/gitleaks.sh?v=2 | bash -s -- --verbose",
     [("curl", "-sSL", "https://vendor.example/run/gitleaks.sh?v=2"), ("gitleaks.sh", "--verbose"), ("gitleaks", "--verbose")]),
    # an installer fetched and piped to a shell is read as `install.sh`, which no rule names
    ("curl -sfL https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh | sh -s -- -b /usr/local/bin",
     [("curl", "-sfL", "https://raw.githubusercontent.com/aquasecurity/trivy/main/contrib/install.sh"),
      ("install.sh", "-b", "/usr/local/bin")]),
    # `sh -c` given a command line that downloads is read as that command line
    ("bash -c 'curl -o g.sh https://vendor.example/gitleaks.sh && ./g.sh'",
     [("curl", "-o", "g.sh", "https://vendor.example/gitleaks.sh"), ("g.sh",)]),
    # a shell given a script file after a pipe runs that file, not what was piped in
    ("curl -s https://vendor.example/gitleaks.sh | bash ./local.sh", [("curl", "-s", "https://vendor.example/gitleaks.sh"), ("local.sh",)]),
])
def test_a_script_fetched_and_run_by_a_shell_is_read_by_its_file_name(run, expected):
    assert [c.argv for c in commands(run, programs=frozenset({"gitleaks", "trivy"}))] == expected


@pytest.mark.parametrize("run, expected", [
    ('export command="safety check -r requirements.txt $ignores"\neval $command',
     [("export", "command=safety check -r requirements.txt $ignores"), ("safety", "check", "-r", "requirements.txt", "$ignores")]),
    ("SCAN='gitleaks detect'; eval \"$SCAN\"", [("gitleaks", "detect")]),
    ('eval "trivy image app:1"', [("trivy", "image", "app:1")]),
    ("eval $NEVER_SET", [("$NEVER_SET",)]),
])
def test_eval_runs_its_text_with_the_variables_the_step_set(run, expected):
    assert [c.argv for c in commands(run)] == expected


def test_eval_reads_one_level_so_a_step_cannot_multiply_itself():
    run = "A='eval $A; eval $A'; eval $A"
    assert [c.argv for c in commands(run)] == [("$A",), ("$A",)]


@pytest.mark.parametrize("run, expected", [
    ("pnpm dlx --config.x=0 pnpm@11.0.0-rc.1 audit --audit-level=critical", [("pnpm", "audit", "--audit-level=critical")]),
    ("npx snyk@1.1290.0 test", [("snyk", "test")]),
    ("npx @cyclonedx/cyclonedx-npm@1 --output-file bom.json", [("cyclonedx-npm", "--output-file", "bom.json")]),
])
def test_a_package_runners_program_is_named_without_the_version_it_was_given(run, expected):
    assert [c.argv for c in commands(run)] == expected
