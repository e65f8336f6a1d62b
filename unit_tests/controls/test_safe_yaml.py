"""Hostile YAML yields a reason, never a hang or a crash."""
import time

from hypothesis import given, settings, strategies as st

from source_circleci_ccm.controls import Unparseable, evaluate_config, parse_config
from source_circleci_ccm.controls.safe_yaml import ParsedConfig

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
)


def test_alias_bomb_is_unknown_not_a_hang(catalogue):
    start = time.monotonic()
    results = evaluate_config(BOMB, catalogue)
    assert time.monotonic() - start < 2
    assert all(r.status == "unknown" for r in results.values())
    assert "alias" in results["sast"].reason


def test_oversized_config_is_rejected():
    result = parse_config("a: " + "x" * (5 * 1024 * 1024 + 1))
    assert isinstance(result, Unparseable) and "MB" in result.reason


def test_deep_nesting_is_rejected():
    result = parse_config("a: " + "[" * 500 + "]" * 500)
    assert isinstance(result, Unparseable) and "nesting" in result.reason


def test_non_mapping_top_level_is_rejected():
    assert isinstance(parse_config("- just\n- a list\n"), Unparseable)


def test_recursive_alias_is_rejected():
    assert isinstance(parse_config("a: &a [*a]\n"), Unparseable)


def test_python_tags_are_not_executed():
    result = parse_config("a: !!python/object/apply:os.system ['echo hi']\n")
    assert isinstance(result, Unparseable)


def test_normal_anchor_use_parses():
    result = parse_config("x: &x {image: a}\njobs:\n  a: {docker: [*x]}\n  b: {docker: [*x]}\n")
    assert isinstance(result, ParsedConfig)
    assert result.data["jobs"]["b"]["docker"][0] == {"image": "a"}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(catalogue, text):
    results = evaluate_config(text, catalogue)
    assert all(r.status in ("pass", "fail", "not_applicable", "unknown") for r in results.values())


def test_an_anchor_defined_again_is_what_later_aliases_refer_to():
    # YAML 1.2 3.2.2.2: anchors need not be unique; an alias is the most recent node with its anchor
    text = (
        "a: &cache {key: one}\n"
        "b: *cache\n"
        "c: !!map &cache {key: two, note: '*cache &cache'}\n"
        "d: [*cache, *cache]\n"
        "e: &x 1\n"
        "f: &x 2\n"
        "g: *x\n"
    )
    parsed = parse_config(text)
    assert isinstance(parsed, ParsedConfig), parsed
    data = parsed.data
    assert data["b"] == {"key": "one"}
    assert data["c"] == {"key": "two", "note": "*cache &cache"}
    assert data["d"] == [data["c"], data["c"]]
    assert data["g"] == 2


def test_a_redefined_anchor_still_counts_towards_the_alias_bomb_limit():
    # the bomb's first anchor is a redefinition: its aliases expand to the new, larger node
    text = "z: &a x\n" + BOMB
    result = parse_config(text)
    assert isinstance(result, Unparseable) and "aliases are expanded" in result.reason
