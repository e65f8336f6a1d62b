"""The security-tool knowledge base: enough tools, each documented, well-formed and reachable by a matcher."""
import textwrap

import pytest

from source_circleci_ccm.controls import evaluate_config, load_catalogue
from source_circleci_ccm.controls.catalogue import SCAN_CONTROLS

KNOWLEDGE = load_catalogue().knowledge


def _config(steps: str, job_key: str = "scan", image: str = "cimg/base:current", orbs: str = "") -> str:
    return textwrap.dedent(f"""
        version: 2.1
        {orbs}
        jobs:
          scan:
            docker: [{{image: {image}}}]
            steps: {steps}
        workflows:
          main: {{jobs: [{job_key}]}}
    """)


def _ways_to_call(tool):
    """One configuration per matcher of ``tool``, with the control it should credit."""
    for exe in tool.executables:
        scanning = [(sub, control) for sub, control in tool.subcommands.items() if control]
        if tool.control:
            yield tool.control, _config(f"[{{run: '{exe} --flag .'}}]")
        for sub, control in scanning:
            yield control, _config(f"[{{run: '{exe} {sub} .'}}]")
        scan = "" if tool.control else scanning[0][0]  # a call that scans, for the options and sources to change
        for option, meaning in tool.options.items():
            for value, control in (meaning.items() if isinstance(meaning, dict) else [("", meaning)]):
                if control:
                    yield control, _config(f"[{{run: '{exe} {scan} {option} {value} .'}}]")
        for scheme, control in tool.sources.items():
            if control:
                yield control, _config(f"[{{run: '{exe} {scan} {scheme}:./target'}}]")
    for build_tool, tasks in tool.tasks.items():
        program = KNOWLEDGE.build_tools.get(build_tool, (build_tool,))[0]
        for task in tasks:
            yield tool.control, _config(f"[{{run: '{program} {task}'}}]")
    for image in tool.images:
        if tool.control:
            yield tool.control, _config(f"[{{run: 'docker run --rm -v $PWD:/src {image}:latest /src'}}]")
            yield tool.control, _config("[checkout, {run: ./entrypoint.sh}]", image=f"{image}:latest")
    for orb, commands in tool.orbs.items():
        orbs = f"orbs: {{tool: {orb}@1.0.0}}"
        for command, control in (commands or {"scan": tool.control}).items():
            if control:
                yield control, _config("[checkout]", job_key=f"tool/{command}", orbs=orbs)


def test_knowledge_base_has_at_least_120_tools_with_a_docs_url_each():
    assert len(KNOWLEDGE.tools) >= 120
    assert len({t.id for t in KNOWLEDGE.tools}) == len(KNOWLEDGE.tools)
    for tool in KNOWLEDGE.tools:
        assert tool.docs.startswith("https://"), tool.id


@pytest.mark.parametrize("tool", KNOWLEDGE.tools, ids=lambda t: t.id)
def test_each_tool_is_well_formed_and_reachable_by_each_of_its_matchers(tool, catalogue):
    controls = tool.controls()
    assert controls and controls <= set(SCAN_CONTROLS), "a tool scans for at least one scan control"
    assert tool.executables or tool.images or tool.orbs or tool.tasks, "a tool needs a matcher"
    ways = list(_ways_to_call(tool))
    assert ways
    for control, config in ways:
        result = evaluate_config(config, catalogue)[control]
        assert result.status == "pass", (control, config)
        assert any(e["rule_id"] == f"kb.{tool.id}" for e in result.evidence), (result.evidence, config)


@pytest.mark.parametrize("run", [
    "trivy --help", "trivy version", "snyk auth $SNYK_TOKEN", "gitleaks version", "npm install -g snyk",
    "echo 'run trivy image later'", "# trivy image app", "kube-linter version", "docker run stackrox/kube-linter version",
    "brew install tfsec", "pip install bandit semgrep",
    "dockle --exit-code 1 app:1",  # Dockle lints an image against best practices: no vulnerability scan
])
def test_installing_or_asking_a_scanner_for_help_is_not_a_scan(run, catalogue):
    results = evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)
    assert all(results[c].status != "pass" for c in SCAN_CONTROLS), {c: results[c].evidence for c in SCAN_CONTROLS}


@pytest.mark.parametrize("orb_job, control", [("secops/wiz-docker", "image_scanning"), ("secops/wiz-iac", "iac_scanning"),
                                              ("secops/snyk-container", "image_scanning")])
def test_an_orb_job_named_for_a_multi_scan_tool_and_its_subcommand_credits_that_subcommand(orb_job, control, catalogue):
    config = _config("[checkout]", job_key=orb_job, orbs="orbs: {secops: example/security-orb@2.0.9}")
    result = evaluate_config(config, catalogue)[control]
    assert result.status == "pass" and result.evidence[0]["matched"] == orb_job


@pytest.mark.parametrize("name", ["Run spectral lint", "Lint the API with spectral"])
def test_a_name_with_a_multi_scan_tool_but_no_subcommand_of_a_scan_credits_nothing(name, catalogue):
    results = evaluate_config(_config(f"[{{run: {{name: {name}, command: make openapi-check}}}}]"), catalogue)
    assert all(results[c].status != "pass" for c in SCAN_CONTROLS)


@pytest.mark.parametrize("orb, job, control", [
    ("bridgecrew/bridgecrew", "scan", "iac_scanning"), ("ovotech/clair-scanner", "scan", "image_scanning"),
    ("lacework/lacework", "ctr-vuln-scan", "image_scanning"), ("nightfall/nightfall_code_scanner", "scan", "secret_scanning"),
])
def test_a_vendor_orb_that_wraps_a_known_scanner_credits_its_scan(orb, job, control, catalogue):
    config = _config("[checkout]", job_key=f"vendor/{job}", orbs=f"orbs: {{vendor: {orb}@1.2.3}}")
    assert evaluate_config(config, catalogue)[control].status == "pass"


def test_an_orb_command_mapped_to_no_control_is_not_a_scan(catalogue):
    # lacework/scan-pkg-manifest assesses a hand-written OS package list, not the project's dependencies or an image
    config = _config("[checkout]", job_key="lw/scan-pkg-manifest", orbs="orbs: {lw: lacework/lacework@9.0}")
    results = evaluate_config(config, catalogue)
    assert all(results[c].status != "pass" for c in SCAN_CONTROLS)


@pytest.mark.parametrize("run, control", [
    ("docker-scout cves $IMAGE --format sbom", "pass"),
    ("docker-scout quickview app:1", "pass"),
    ("docker-scout sbom app:1", "fail"),
    ("docker-scout version", "fail"),
])
def test_the_docker_scout_plugin_binary_run_on_its_own_scans_images(run, control, catalogue):
    assert evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)["image_scanning"].status == control


@pytest.mark.parametrize("run, control", [
    ("bash <(curl -s https://raw.githubusercontent.com/acme/gitleaks-ci/master/gitleaks.sh)", "secret_scanning"),
    ('sh -c "$(curl -sSf -L https://receiver.example/image/script/trivy)"', "image_scanning"),
])
def test_a_scanner_script_fetched_and_run_by_a_shell_is_a_scan(run, control, catalogue):
    assert evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)[control].status == "pass"


@pytest.mark.parametrize("run, control, status", [
    ("make test bandit", "sast", "pass"),
    ("just gosec", "sast", "pass"),
    ("make -j 4 VERBOSE=1 gitleaks", "secret_scanning", "pass"),
    ("make -C bandit build", "sast", "fail"),  # a directory, not a target
    ("make install-bandit", "sast", "fail"),
    ("make trivy", "image_scanning", "unknown"),  # Trivy scans for several controls: the target names it, not which
])
def test_a_build_target_named_as_a_single_purpose_scanner_runs_it(run, control, status, catalogue):
    assert evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)[control].status == status


@pytest.mark.parametrize("run, credited", [
    ("trivy fs --scanners secret .", {"secret_scanning"}),  # the scanners chosen replace the subcommand's default
    ("trivy fs --scanners=vuln,misconfig .", {"dependency_scanning", "iac_scanning"}),
    ("trivy --security-checks secret fs .", {"secret_scanning"}),  # an option's value is not the subcommand
    ("trivy fs --scanners license .", set()),
    ("checkov -d . --framework secrets", {"secret_scanning"}),
    ("semgrep ci --supply-chain", {"dependency_scanning"}),
    ("snyk test --docker app:1 --file=Dockerfile", {"image_scanning"}),
    ("grype dir:.", {"dependency_scanning"}),  # a directory source, not an image
    ("grype registry:app:1", {"image_scanning"}),
])
def test_options_and_sources_that_choose_a_scan_decide_what_is_credited(run, credited, catalogue):
    results = evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)
    assert {c for c in SCAN_CONTROLS if results[c].status == "pass"} == credited


@pytest.mark.parametrize("run, control", [
    ("mvn org.owasp:dependency-check-maven:9.0.9:check", "dependency_scanning"),
    ("mvn -B org.sonatype.ossindex.maven:ossindex-maven-plugin:3.2.0:audit", "dependency_scanning"),
    ("mvn org.sonatype.ossindex.maven:ossindex-maven-plugin:audit", "dependency_scanning"),
    ("./gradlew snyk-test snyk-monitor", "dependency_scanning"),  # the Snyk Gradle plugin's tasks
    ("mvn io.snyk:snyk-maven-plugin:2.2.0:test", "dependency_scanning"),
])
def test_a_maven_plugin_goal_written_with_its_coordinates_is_found_by_plugin_and_goal(run, control, catalogue):
    assert evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)[control].status == "pass"


@pytest.mark.parametrize("orb, job, control", [
    ("acme/bundler-audit", "check", "dependency_scanning"),  # the orb's name says the tool in words of its program
    ("acme/owasp-dependency-check", "scan", "dependency_scanning"),
    ("acme/detect-secrets", "run", "secret_scanning"),
])
def test_a_third_party_orb_named_for_a_tool_of_several_words_credits_its_scan(orb, job, control, catalogue):
    config = _config("[checkout]", job_key=f"vendor/{job}", orbs=f"orbs: {{vendor: {orb}@1.0.0}}")
    assert evaluate_config(config, catalogue)[control].status == "pass"


@pytest.mark.parametrize("name, credited", [
    ("Run bundle-audit", True), ("Bundler audit check", True), ("Audit the bundle", False),  # the words in the tool's order
    ("Install bundle-audit", False),
])
def test_an_opaque_step_named_for_a_tool_of_several_words_credits_it(name, credited, catalogue):
    results = evaluate_config(_config(f"[{{run: {{name: {name}, command: make deps-check}}}}]"), catalogue)
    assert (results["dependency_scanning"].status == "pass") is credited


def test_an_opaque_step_named_for_a_package_managers_audit_is_a_dependency_scan(catalogue):
    config = _config("[{run: {name: Submit PR if npm audit fix makes changes, command: ./scripts/npm-audit-fix.sh}}]")
    assert evaluate_config(config, catalogue)["dependency_scanning"].status == "pass"


@pytest.mark.parametrize("run, control, status", [
    ("tox -p auto -e safety", "dependency_scanning", "pass"),  # an environment named as a single-purpose scanner
    ("nox -s lint bandit", "sast", "pass"),  # nox takes several sessions after one option
    ("tox -e py311 -- -k safety", "dependency_scanning", "fail"),  # what follows `--` goes to the test runner
    ("nox --session=bandit", "sast", "pass"),
    ("tox -e trivy", "image_scanning", "fail"),  # Trivy scans for several controls: the name cannot say which
    ("bin/brakeman.sh", "sast", "pass"),  # a project script named as a scanner
    ("./tools/bin/sonarqube.sh", "sast", "pass"),  # ... or as the product the scanner belongs to
    ("npm run snyk-test", "dependency_scanning", "pass"),  # a package script named for a tool's call
    ("npm run snyk-protect", "dependency_scanning", "fail"),
    ("snyk-to-html -i results.json -o results.html", "dependency_scanning", "fail"),
    ("bandit-sarif-formatter report.json", "sast", "fail"),
])
def test_environments_scripts_and_package_scripts_named_for_a_scanner_run_it(run, control, status, catalogue):
    assert evaluate_config(_config(f"[{{run: {run!r}}}]"), catalogue)[control].status == status
