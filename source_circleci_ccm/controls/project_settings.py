"""Project- and organisation-level controls: fork PR secrets and context restrictions."""
from __future__ import annotations

from .catalogue import Catalogue, load_catalogue
from .results import FAIL, NOT_APPLICABLE, PASS, UNKNOWN, ControlResult, evidence

def _catalogue(catalogue: Catalogue | None) -> Catalogue:
    """The given catalogue, or the packaged one (callers that evaluate many projects pass theirs)."""
    return catalogue if catalogue is not None else load_catalogue()




def evaluate_project_settings(advanced: dict | None, catalogue: Catalogue | None = None) -> dict[str, ControlResult]:
    """``advanced`` is the project settings ``advanced`` block (or the whole settings document)."""
    cat = _catalogue(catalogue)
    control = "fork_prs_get_no_secrets"
    if isinstance(advanced, dict) and isinstance(advanced.get("advanced"), dict):
        advanced = advanced["advanced"]
    if not isinstance(advanced, dict) or "forks_receive_secret_env_vars" not in advanced:
        return {control: cat.result(control, UNKNOWN, reason="project settings not available")}
    value = advanced["forks_receive_secret_env_vars"]
    ev = [evidence("project.settings.advanced.forks_receive_secret_env_vars", rule_id="settings.forks-no-secrets",
                   matched=f"forks_receive_secret_env_vars: {str(value).lower()}")]
    if value is False:
        return {control: cat.result(control, PASS, ev)}
    if value is True:
        return {control: cat.result(control, FAIL, ev, reason="fork pull requests receive secret env vars")}
    return {control: cat.result(control, UNKNOWN, ev, reason=f"unexpected value {value!r}")}


def evaluate_contexts(contexts: list[dict] | None, env_vars_by_context: dict[str, list] | None,
                      restrictions_by_context: dict[str, list] | None,
                      catalogue: Catalogue | None = None) -> dict[str, ControlResult]:
    """Pass when every context holding variables has at least one restriction."""
    cat = _catalogue(catalogue)
    control = "contexts_restricted"
    if contexts is None:
        return {control: cat.result(control, UNKNOWN, reason="contexts not available")}
    env_vars_by_context = env_vars_by_context or {}
    restrictions_by_context = restrictions_by_context or {}
    ev, unrestricted, holding = [], [], 0
    for ctx in contexts:
        if not isinstance(ctx, dict):
            continue
        cid = str(ctx.get("id"))
        name = str(ctx.get("name") or cid)
        variables = env_vars_by_context.get(cid, env_vars_by_context.get(name)) or []
        if not variables:
            continue
        holding += 1
        restrictions = restrictions_by_context.get(cid, restrictions_by_context.get(name))
        if restrictions is None:
            return {control: cat.result(control, UNKNOWN,
                                     reason=f"restrictions of context {name} not available")}
        kinds = sorted({str(r.get("restriction_type", "?")) for r in restrictions if isinstance(r, dict)})
        ev.append(evidence(f"contexts.{name}", rule_id="contexts.restricted",
                           matched=f"{len(variables)} variable(s), {len(restrictions)} restriction(s) {kinds}",
                           context=name, variables=len(variables), restrictions=len(restrictions)))
        if not restrictions:
            unrestricted.append(name)
    if holding == 0:
        return {control: cat.result(control, NOT_APPLICABLE, reason="no context holds variables")}
    if unrestricted:
        return {control: cat.result(control, FAIL, ev,
                                 reason=f"contexts with variables but no restriction: {', '.join(unrestricted)}")}
    return {control: cat.result(control, PASS, ev)}
