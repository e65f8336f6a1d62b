"""Which jobs deploy: strong evidence alone, weak signals (job name, context, filters, approval hold, a script
named release) only together, and never a job that only notifies, caches or uploads reports."""
import textwrap

import pytest

from source_circleci_ccm.controls import evaluate_config

ORBS = """
version: 2.1
orbs:
  slack: circleci/slack@4.12.5
  docker: circleci/docker@2.8.2
  platform: example/platform@1.0.0
  codecov: codecov/codecov@4.1.0
  helm: circleci/helm@3.0.2
"""


def _config(jobs: str, workflow: str) -> str:
    return ORBS + textwrap.dedent(jobs) + textwrap.dedent(workflow)


def _job(name: str, steps: str) -> str:
    return f"""
        {name}:
          docker: [{{image: cimg/base:current}}]
          steps: {steps}
    """


def _deploy(jobs: str, workflow: str, catalogue):
    return evaluate_config(_config("jobs:" + jobs, workflow), catalogue, include_deploy=True)["deploy"]


def _deploy_invoked(name: str, steps: str, invocation: str, catalogue):
    """The deploy verdict on one job that a workflow invokes with ``invocation`` (its context, filters, ...)."""
    return _deploy(_job(name, steps), f"""
        workflows:
          main:
            jobs:
              - {name}: {invocation}
        """, catalogue)


def _deploy_alone(name: str, steps: str, catalogue):
    """The deploy verdict on one job that a workflow runs alone."""
    return _deploy(_job(name, steps), f"""
        workflows:
          main: {{jobs: [{name}]}}
        """, catalogue)


def test_a_deploy_command_alone_makes_a_job_a_deploy(catalogue):
    deploy = _deploy_alone("build", "[checkout, {run: docker push registry.example.com/app}]", catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.commands"


def test_a_job_name_alone_does_not_make_a_deploy(catalogue):
    deploy = _deploy_alone("release", "[checkout, {run: ./scripts/go.sh}]", catalogue)
    assert deploy.status == "not_applicable"


def test_a_production_context_on_tag_filters_makes_an_opaque_release_script_a_deploy(catalogue):
    deploy = _deploy(_job("ship", "[checkout, {run: ./scripts/release.sh}]"), """
        workflows:
          main:
            jobs:
              - ship:
                  context: production
                  filters: {tags: {only: /^v.*/}, branches: {ignore: /.*/}}
        """, catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.combined-signals"


def test_combined_deploy_evidence_names_each_signal_and_the_rule_that_saw_it(catalogue):
    deploy = _deploy(_job("ship", "[checkout, {run: ./scripts/release.sh}]"), """
        workflows:
          main:
            jobs:
              - ship:
                  context: production
                  filters: {tags: {only: /^v.*/}, branches: {ignore: /.*/}}
        """, catalogue)
    signals = {s["signal"]: (s["rule_id"], s["matched"]) for s in deploy.evidence[0]["signals"]}
    assert signals == {"context": ("deploy.context", "production"),
                       "filters": ("deploy.release-filters", "tag:v.*"),
                       "script name": ("deploy.release-script", "release.sh")}
    assert deploy.evidence[0]["matched"] == "context: production + filters: tag:v.* + script name: release.sh"


def test_a_deploy_job_name_on_release_branch_filters_is_a_deploy(catalogue):
    deploy = _deploy_invoked("publish", "[checkout, {run: ./ship.sh}]",
                             '{filters: {branches: {only: [main, /release\\/.*/]}}}', catalogue)
    assert deploy.status == "pass"


def test_branch_filters_that_let_a_feature_branch_through_are_no_release_signal(catalogue):
    deploy = _deploy_invoked("publish", "[checkout, {run: ./ship.sh}]",
                             '{filters: {branches: {only: [main, feature-x]}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_a_deploy_job_name_held_for_approval_is_a_deploy(catalogue):
    deploy = _deploy(_job("deploy_live", "[checkout, {run: ./bin/restart_pods}]"), """
        workflows:
          main:
            jobs:
              - hold: {type: approval}
              - deploy_live: {requires: [hold]}
        """, catalogue)
    assert deploy.status == "pass"
    assert [s["signal"] for s in deploy.evidence[0]["signals"]] == ["job name", "approval hold"]


def test_a_credited_approval_says_why_the_job_it_gates_is_a_deploy(catalogue):
    results = evaluate_config(_config("jobs:" + _job("deploy_live", "[checkout, {run: ./bin/restart_pods}]"), """
        workflows:
          main:
            jobs:
              - hold: {type: approval}
              - deploy_live: {requires: [hold]}
        """), catalogue)
    gate = results["approval_gate_before_deploy"].evidence[0]
    assert gate["deploy_rule_id"] == "deploy.combined-signals"
    assert gate["deploy_matched"] == "job name: deploy_live + approval hold: hold"


def test_a_job_named_deploy_that_only_notifies_is_not_a_deploy(catalogue):
    deploy = _deploy_invoked("deploy", "[checkout, {slack/notify: {event: pass}}]",
                             '{context: production, filters: {branches: {only: main}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_a_job_whose_name_says_it_notifies_is_not_made_a_deploy_by_its_context_and_filters(catalogue):
    deploy = _deploy_invoked("deploy-notify", "[{run: ./scripts/post_message.sh}]",
                             '{context: production, filters: {branches: {only: main}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_artifact_test_result_and_coverage_uploads_are_not_deploys(catalogue):
    steps = "[checkout, {store_artifacts: {path: dist}}, {store_test_results: {path: results}}, codecov/upload]"
    deploy = _deploy_invoked("release", steps,
                             '{context: release, filters: {tags: {only: /^v.*/}, branches: {ignore: /.*/}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_a_step_named_publish_test_results_is_not_a_deploy(catalogue):
    deploy = _deploy_alone("build", '[{run: {name: "Publish test results", command: ./scripts/junit.sh}}]', catalogue)
    assert deploy.status == "not_applicable"


def test_an_approval_that_gates_only_a_notification_is_not_credited(catalogue):
    jobs = _job("deploy-notify", "[slack/notify]") + _job("deploy", "[{run: cf push app}]")
    results = evaluate_config(_config("jobs:" + jobs, """
        workflows:
          main:
            jobs:
              - deploy
              - hold: {type: approval, requires: [deploy]}
              - deploy-notify: {requires: [hold]}
        """), catalogue)
    assert results["approval_gate_before_deploy"].status == "fail"


def test_an_approval_that_gates_only_a_coverage_upload_is_not_credited(catalogue):
    jobs = _job("publish-coverage", "[checkout, codecov/upload]")
    results = evaluate_config(_config("jobs:" + jobs, """
        workflows:
          main:
            jobs:
              - hold: {type: approval}
              - publish-coverage: {requires: [hold], filters: {branches: {only: main}}}
        """), catalogue)
    assert results["approval_gate_before_deploy"].status == "not_applicable"


def test_an_approval_that_gates_only_a_docs_preview_kept_as_build_artifacts_is_not_credited(catalogue):
    jobs = _job("docs-preview", "[checkout, {run: make -C docs html}, {store_artifacts: {path: docs/_build/html}}]")
    results = evaluate_config(_config("jobs:" + jobs, """
        workflows:
          main:
            jobs:
              - hold: {type: approval}
              - docs-preview: {requires: [hold]}
        """), catalogue)
    assert results["approval_gate_before_deploy"].status == "not_applicable"


def test_an_approval_that_gates_a_docs_preview_published_to_a_host_is_credited_as_publishing_docs_is_a_deploy(
        catalogue):
    jobs = _job("docs-preview", "[checkout, {run: netlify deploy --dir=docs/_build/html --alias preview}]")
    results = evaluate_config(_config("jobs:" + jobs, """
        workflows:
          main:
            jobs:
              - hold: {type: approval}
              - docs-preview: {requires: [hold]}
        """), catalogue)
    assert results["approval_gate_before_deploy"].status == "pass"


def test_a_package_script_named_deploy_is_a_deploy(catalogue):
    deploy = _deploy_alone("docs", "[checkout, {run: yarn deploy:preview}]", catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.named-script"


def test_a_build_target_named_for_a_deploy_file_makes_the_file_not_a_deploy(catalogue):
    steps = "[checkout, {run: {name: Create deploy.json, command: bundle exec rake login:deploy_json}}]"
    assert _deploy_alone("build", steps, catalogue).status != "pass"


def test_pushing_to_a_registry_on_the_ci_machine_is_not_a_deploy(catalogue):
    steps = "[checkout, {run: docker push localhost:5000/app}]"
    assert _deploy_alone("build", steps, catalogue).status != "pass"


@pytest.mark.parametrize("start", ["minikube start --driver=none", "kind create cluster --name ci", "k3d cluster create ci"])
def test_what_a_job_deploys_into_a_cluster_it_started_on_the_ci_machine_is_not_a_deploy(start, catalogue):
    steps = f"[checkout, {{run: {start!r}}}, {{run: {{name: Deploy k8s connector, command: ./deploy_connector.sh}}}}, {{run: helm install app ./chart}}]"
    assert _deploy_alone("build_test", steps, catalogue).status != "pass"


def test_a_deploy_before_a_job_starts_a_local_cluster_is_still_a_deploy(catalogue):
    steps = "[checkout, {run: helm upgrade --install app ./chart}, {run: kind create cluster}]"
    assert _deploy_alone("release", steps, catalogue).status == "pass"


@pytest.mark.parametrize("script, status", [("./tools/bin/docker_deploy.sh", "pass"), ("./scripts/post_deploy.sh", "not_applicable")])
def test_a_project_script_named_for_what_it_deploys_is_a_deploy(script, status, catalogue):
    assert _deploy_alone("build", f"[checkout, {{run: {script}}}]", catalogue).status == status


def test_a_deploy_named_job_held_for_approval_that_only_prints_and_checks_health_is_not_a_deploy(catalogue):
    steps = ("[checkout, {run: {name: Simulate deployment, command: 'echo Deploying; sleep 2'}},"
             " {run: {name: Health check, command: 'curl -sf https://app.example.com/health > /dev/null 2>&1'}}]")
    deploy = _deploy(_job("deploy-prod", steps), """
        workflows:
          main:
            jobs:
              - hold: {type: approval}
              - deploy-prod: {requires: [hold], filters: {branches: {only: main}}}
        """, catalogue)
    assert deploy.status == "not_applicable"


def test_the_legacy_deploy_step_is_a_deploy(catalogue):
    deploy = _deploy_alone("build", "[checkout, {deploy: {command: ./scripts/ship.sh}}]", catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.deploy-step"


def test_installing_the_helm_client_is_not_a_deploy(catalogue):
    deploy = _deploy_alone("lint", "[checkout, helm/install_helm_client, {run: helm lint chart}]", catalogue)
    assert deploy.status == "not_applicable"


def test_pushing_release_tags_is_a_release(catalogue):
    deploy = _deploy_alone("tag", '[checkout, {run: "git tag v1.2.0 && git push origin --tags"}]', catalogue)
    assert deploy.status == "pass"


def test_pushing_a_commit_back_to_the_branch_is_not_a_deploy(catalogue):
    deploy = _deploy_alone("docs", '[checkout, {run: "git commit -am docs && git push origin main"}]', catalogue)
    assert deploy.status == "not_applicable"


def test_an_orb_job_named_for_pushing_to_a_registry_or_catalogue_publishes(catalogue):
    deploy = _deploy("", """
        orbs: {architect: giantswarm/architect@5}
        workflows:
          main:
            jobs: [architect/push-to-app-catalog]
        """, catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.orb-build-docker-publish"


def test_an_orb_job_that_builds_an_image_publishes_it(catalogue):
    deploy = _deploy("", """
        workflows:
          main:
            jobs:
              - platform/build_multiplatform_docker: {name: build_docker}
        """, catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.orb-image-build-job"


def test_an_orb_job_told_not_to_push_the_image_it_builds_is_not_a_deploy(catalogue):
    deploy = _deploy("", """
        workflows:
          main:
            jobs:
              - platform/build-image: {push_image: false}
        """, catalogue)
    assert deploy.status == "not_applicable"


def test_a_step_that_builds_an_image_with_an_orb_command_is_not_a_deploy(catalogue):
    deploy = _deploy_alone("image", "[checkout, setup_remote_docker, {docker/build: {image: app}}]", catalogue)
    assert deploy.status == "not_applicable"


def test_uploading_a_built_site_to_object_storage_is_a_deploy(catalogue):
    deploy = _deploy_alone("site", "[checkout, {run: 'npm run build && aws s3 sync dist s3://www.example.org --delete'}]", catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.object-storage-upload"


def test_downloading_from_object_storage_is_not_a_deploy(catalogue):
    deploy = _deploy_alone("fetch", "[{run: 'aws s3 cp s3://models.example.org/weights.bin ./weights.bin'}]", catalogue)
    assert deploy.status == "not_applicable"


def test_an_upload_whose_step_says_it_uploads_coverage_is_not_a_deploy(catalogue):
    steps = "[{run: {name: Push coverage to S3, command: 'aws s3 cp --recursive out/html \"s3://$BUCKET/unit/\"'}}]"
    deploy = _deploy_alone("unit", steps, catalogue)
    assert deploy.status == "not_applicable"


def test_an_upload_to_a_local_object_storage_emulator_is_not_a_deploy(catalogue):
    steps = "[{run: 'aws --endpoint-url http://localhost:9000 s3 sync fixtures s3://bucket/'}, {run: npm run int-test}]"
    deploy = _deploy_alone("integration", steps, catalogue)
    assert deploy.status == "not_applicable"


def test_a_job_named_redeploy_is_named_as_a_deploy(catalogue):
    deploy = _deploy_invoked("redeploy-frontend", "[checkout, {run: ./scripts/go.sh}]",
                             '{context: production}', catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["signals"][0]["matched"] == "redeploy-frontend"


def test_a_job_that_tears_down_what_it_applied_built_test_infrastructure_not_a_deploy(catalogue):
    deploy = _deploy_alone("acceptance", """
              - {run: {working_directory: test/gke, command: terraform init && terraform apply -auto-approve}}
              - {run: go test ./acceptance/...}
              - {run: {working_directory: test/gke, command: terraform destroy -auto-approve}}""", catalogue)
    assert deploy.status == "not_applicable"


def test_a_teardown_in_another_working_directory_leaves_the_deploy_standing(catalogue):
    deploy = _deploy_alone("acceptance", """
              - {run: {working_directory: infra/prod, command: terraform apply -auto-approve}}
              - {run: {working_directory: infra/preview, command: terraform destroy -auto-approve}}""", catalogue)
    assert deploy.status == "pass"


def test_destroying_before_applying_recreates_and_is_a_deploy(catalogue):
    deploy = _deploy_alone("acceptance", "[{run: 'terraform destroy -auto-approve && terraform apply -auto-approve'}]", catalogue)
    assert deploy.status == "pass"


def test_a_job_named_as_pushing_an_image_is_a_deploy(catalogue):
    deploy = _deploy_alone("dev-upload-docker", "[checkout, setup_remote_docker, {run: make ci.dev-docker}]", catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.image-push-job-name"


def test_a_step_named_release_is_one_weak_signal_not_a_deploy_alone(catalogue):
    deploy = _deploy_alone("handler", "[checkout, {run: {name: Release handler, command: ./bin/go}}]", catalogue)
    assert deploy.status == "not_applicable"


def test_a_release_job_on_tags_whose_steps_only_build_and_test_is_not_a_deploy(catalogue):
    steps = "[checkout, {run: {name: Build executable, command: make -C handler release}}, {run: go test ./...}]"
    deploy = _deploy_invoked("release", steps, '{filters: {tags: {only: /^v.*/}, branches: {ignore: /.*/}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_a_step_named_as_building_and_deploying_is_not_build_work(catalogue):
    deploy = _deploy_invoked("deploy", "[checkout, {run: {name: Build and deploy, command: ./bin/go}}]",
                             '{context: production}', catalogue)
    assert deploy.status == "pass"


def test_a_release_job_that_hands_what_it_made_on_through_the_workspace_is_not_a_deploy(catalogue):
    steps = "[checkout, {run: make release_handler}, {persist_to_workspace: {root: ., paths: [release/*]}}]"
    deploy = _deploy_invoked("release_handler", steps,
                             '{filters: {tags: {only: /^v.*/}, branches: {only: master}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_a_deploy_command_in_a_job_that_persists_its_outputs_is_still_a_deploy(catalogue):
    steps = ("[checkout, {run: aws cloudformation deploy --template-file stack.yml --stack-name app},"
             " {persist_to_workspace: {root: ., paths: [outputs.env]}}]")
    deploy = _deploy_alone("infrastructure", steps, catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.commands"


@pytest.mark.parametrize("command", [
    # each tool's documented deploy or publish call
    "terragrunt run-all apply", "flux reconcile kustomization app", "aws elasticbeanstalk update-environment --environment-name e",
    "az functionapp deployment source config-zip -g g -n n --src f.zip", "az acr build --registry r --image app .",
    "ko apply -f config/", "yarn npm publish", "sbt +publishSigned sonatypeBundleRelease", "lein deploy clojars",
    "mix hex.publish --yes", "bundle exec fastlane beta", "fastlane pilot upload", "jf rt u dist/ repo/",
    "ansible-playbook -i inventory/prod deploy.yml", "bundle exec cap production deploy", "npx wrangler deploy",
    "mkdocs gh-deploy --force", "ghp-import -n -p -f site", "helm push chart.tgz oci://registry/charts", "crane push image.tar repo/app",
    "skopeo copy docker-archive:app.tar docker://repo/app", "gcloud builds submit --tag gcr.io/p/app", "copilot svc deploy --env prod",
    "ecs-deploy -c cluster -n service -i image", "doctl apps create-deployment $APP_ID", "kamal deploy", "nomad job run app.nomad",
    "eas submit -p ios", "firebase appdistribution:distribute app.apk --app $APP", "snapcraft upload --release=stable app.snap",
    "bundle exec rake release", "dart pub publish --force", "flutter pub publish -f", "cargo release --execute",
    "docker compose push", "docker-compose -f prod.yml push", "buildah push app", "npx netlify-cli deploy --prod --dir=build",
    "azcopy copy ./dist 'https://acct.blob.core.windows.net/$web' --recursive", "git push -f origin gh-pages",
    "skaffold build --default-repo=registry.example.com --file-output=tags.json",
])
def test_documented_deploy_and_publish_commands_make_a_job_a_deploy(command, catalogue):
    deploy = _deploy_alone("build", f"[checkout, {{run: {command!r}}}]", catalogue)
    assert deploy.status == "pass" and deploy.evidence[0]["rule_id"] == "deploy.commands"


@pytest.mark.parametrize("command", [
    "ansible-playbook --check -i inventory/prod deploy.yml", "ko build --push=false ./cmd/app", "sbt publishLocal",
    "fastlane test", "nomad job validate app.nomad", "flux check", "crane digest repo/app", "helm repo add charts https://x",
    "cargo release patch", "dart pub publish --dry-run",
])
def test_checking_building_or_reading_with_a_deploy_tool_is_not_a_deploy(command, catalogue):
    assert _deploy_alone("build", f"[checkout, {{run: {command!r}}}]", catalogue).status == "not_applicable"


@pytest.mark.parametrize("command", [
    "rsync -avz --delete public/ deploy@www.example.org:/var/www/site",
    "ssh deploy@app.example.org 'cd app && git pull && sudo systemctl restart app'",
])
def test_copying_to_or_restarting_on_a_remote_host_is_a_deploy_signal_that_needs_another(command, catalogue):
    steps = f"[checkout, {{run: {command!r}}}]"
    assert _deploy_alone("sync", steps, catalogue).status == "not_applicable"
    deploy = _deploy_alone("deploy-site", steps, catalogue)
    assert deploy.status == "pass"
    assert {s["rule_id"] for s in deploy.evidence[0]["signals"]} == {"deploy.job-name", "deploy.remote-host"}


def test_the_old_deploy_step_uploading_coverage_is_not_a_deploy(catalogue):
    steps = """[checkout, {run: bundle exec rspec}, {deploy: {command: "./cc-test-reporter sum-coverage coverage/*.json | ./cc-test-reporter upload-coverage --input -"}}]"""
    assert _deploy_alone("ruby_test", steps, catalogue).status == "not_applicable"


def test_a_job_that_only_scans_is_not_made_a_deploy_by_its_release_name_and_context(catalogue):
    deploy = _deploy(_job("Security Scan release", "[checkout, {run: {name: Setup Scanning, command: git config --global x y}}, snyk/scan]"), """
        orbs: {snyk: snyk/snyk@2.0}
        workflows:
          main:
            jobs:
              - Security Scan release: {context: [devex-release]}
        """, catalogue)
    assert deploy.status == "not_applicable"


def test_opening_a_release_pull_request_is_not_a_release(catalogue):
    deploy = _deploy_invoked("Create/update release PR", "[checkout, {run: release-please release-pr --token $GITHUB_TOKEN}]",
                             '{context: [devex-release]}', catalogue)
    assert deploy.status == "not_applicable"


def test_a_script_named_for_testing_a_release_is_no_release_signal(catalogue):
    deploy = _deploy_invoked("integration_node_11", "[checkout, {run: ./scripts/build-post-release-test.sh}]",
                             '{filters: {tags: {only: /^v.*/}, branches: {ignore: /.*/}}}', catalogue)
    assert deploy.status == "not_applicable"


@pytest.mark.parametrize("orb, job, status", [
    ("circleci/terraform@3.2", "tf/apply", "pass"), ("pulumi/pulumi@2.1", "tf/update", "pass"),
    ("circleci/terraform@3.2", "tf/plan", "not_applicable"),
    ("acme/terraform@1.0", "tf/aws: {apply-step: true}", "pass"), ("acme/terraform@1.0", "tf/aws: {apply-step: false}", "not_applicable"),
])
def test_an_infrastructure_orbs_apply_job_is_a_deploy(orb, job, status, catalogue):
    config = textwrap.dedent(f"""
        version: 2.1
        orbs: {{tf: {orb}}}
        workflows:
          main:
            jobs: [{{{job}}}]
        """)
    assert evaluate_config(config, catalogue, include_deploy=True)["deploy"].status == status


_FIXTURE = """
    version: 2.1
    orbs: {terraform: acme/terraform@1.0}
    workflows:
      module-ci:
        jobs:
          - terraform/apply: {name: fixture-apply, working-directory: test/fixture, integration-tests: [{run: inspec exec test}]}
          - approve-destroy: {type: approval, requires: [fixture-apply]}
          - terraform/destroy: {name: fixture-destroy, working-directory: test/fixture, requires: [approve-destroy]}
    """


def test_an_orbs_apply_that_the_same_workflow_destroys_with_the_same_settings_builds_a_test_fixture(catalogue):
    results = evaluate_config(textwrap.dedent(_FIXTURE), catalogue, include_deploy=True)
    assert results["deploy"].status == "not_applicable"
    assert results["approval_gate_before_deploy"].status == "not_applicable"  # it gates a teardown, not a deploy


def test_an_orbs_apply_destroyed_elsewhere_still_deploys(catalogue):
    config = textwrap.dedent(_FIXTURE).replace("{name: fixture-destroy, working-directory: test/fixture,",
                                               "{name: fixture-destroy, working-directory: test/other,")
    assert evaluate_config(config, catalogue, include_deploy=True)["deploy"].status == "pass"


def test_a_job_that_only_commits_and_pushes_a_branch_is_not_a_deploy(catalogue):
    steps = "[checkout, {run: git checkout -b boilerplate-release}, {run: 'git commit -am generated'}, {run: git push origin boilerplate-release --force}]"
    deploy = _deploy_invoked("deploy", steps, '{filters: {branches: {only: master}}}', catalogue)
    assert deploy.status == "not_applicable"


def test_pushing_a_release_tag_it_made_is_still_a_release(catalogue):
    steps = """[checkout, {run: "git tag -a v1.2.3 -m v1.2.3 && git push origin v1.2.3"}]"""
    deploy = _deploy_invoked("publish", steps, '{filters: {branches: {only: main}}}', catalogue)
    assert deploy.status == "pass"


@pytest.mark.parametrize("step, status", [
    ("Distribute to Firebase AppTester Dev", "pass"), ("push development branch to GitHub", "not_applicable"),
])
def test_step_names_that_distribute_a_build_or_push_a_branch(step, status, catalogue):
    steps = f"[checkout, {{run: {{name: {step!r}, command: bundle exec fastlane distDev}}}}]"
    assert _deploy_alone("build", steps, catalogue).status == status


def test_preparing_a_release_behind_an_approval_is_not_a_release(catalogue):
    deploy = _deploy(_job("release-prep", "[checkout, {run: yarn run merge-ci}, {run: ./scripts/set-release-version.sh}]"), """
        workflows:
          main:
            jobs:
              - release-approval: {type: approval}
              - release-prep: {requires: [release-approval]}
        """, catalogue)
    assert deploy.status == "not_applicable"
