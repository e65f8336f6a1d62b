#!/usr/bin/env python
"""Score the controls engine against labelled folders of CircleCI configs.

Usage: python scripts/score_controls.py LABELLED_DIR... [--split all|tuning|held-out] [--rules FILE.yaml] [--verbose]

Each LABELLED_DIR holds *.yml files and labels.json ({file: {label: {"value": bool}}}).
A label is predicted true when our status is ``pass`` (not_applicable, fail and
unknown count as false); ``has_deploy`` comes from deploy detection.  The
``unknown`` column counts files where the control came out ``unknown``.  With a
handful of positives one miss moves recall a lot, so each figure comes with the
lower end of its 95 % Wilson score interval (``low``): the recall the rules would
keep, at 95 % confidence, on more configurations like these.

``--split held-out`` scores only the third of the repositories that was set
aside (by a hash of the repository name, fixed before any rule was written)
while rules were tuned on the other two thirds (``--split tuning``): its
figures estimate how the rules do on configurations they were not written for.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from source_circleci_ccm.controls import evaluate_config, load_catalogue, load_rules_file  # noqa: E402

LABELS = ("dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning",
          "automated_tests", "has_deploy", "approval_gate_before_deploy", "tests_before_deploy")
SPLITS = ("all", "tuning", "held-out")


def is_held_out(file_name: str) -> bool:
    """A third of the repositories, chosen by the hash of `owner__repo` (the file name less `NN-` and `.yml`)."""
    repository = file_name.split("-", 1)[1].rsplit(".", 1)[0]
    return int(hashlib.sha256(repository.encode()).hexdigest(), 16) % 3 == 0


def in_split(file_name: str, split: str) -> bool:
    return split == "all" or (split == "held-out") == is_held_out(file_name)


def predict(text: str, catalogue) -> tuple[dict[str, bool], dict[str, bool]]:
    """(label -> predicted true, label -> came out unknown)."""
    results = evaluate_config(text, catalogue, include_deploy=True)
    results["has_deploy"] = results.pop("deploy")
    return ({c: r.status == "pass" for c, r in results.items()},
            {c: r.status == "unknown" for c, r in results.items()})


def score(folders: list[Path], catalogue, split: str = "all") -> tuple[dict[str, dict], list[tuple[str, str, bool, bool]]]:
    counts = {label: {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "unknown": 0} for label in LABELS}
    mistakes = []
    for folder in folders:
        labels = json.loads((folder / "labels.json").read_text("utf-8"))
        for name in sorted(labels):
            path = folder / name
            if not path.is_file() or not in_split(name, split):
                continue
            predicted, unknown = predict(path.read_text("utf-8", errors="replace"), catalogue)
            for label in LABELS:
                if label not in labels[name]:
                    continue
                truth = bool(labels[name][label].get("value"))
                guess = bool(predicted.get(label))
                key = ("tp" if guess else "fn") if truth else ("fp" if guess else "tn")
                counts[label][key] += 1
                counts[label]["unknown"] += bool(unknown.get(label))
                if guess != truth:
                    mistakes.append((name, label, truth, guess))
    return counts, mistakes


def metrics(c: dict) -> tuple[float, float]:
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    return precision, recall


def wilson_lower(successes: int, trials: int, z: float = 1.96) -> float:
    """Lower end of the Wilson score interval for a proportion (1.0 when there were no trials)."""
    if not trials:
        return 1.0
    p = successes / trials
    centre = p + z * z / (2 * trials)
    spread = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return (centre - spread) / (1 + z * z / trials)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+")
    parser.add_argument("--split", choices=SPLITS, default="all")
    parser.add_argument("--rules", type=Path, help="extra/override rules YAML")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every mismatch")
    args = parser.parse_args(argv)
    for folder in args.folders:
        if not (folder / "labels.json").is_file():
            print(f"error: {folder} has no labels.json", file=sys.stderr)
            return 2
    custom = load_rules_file(args.rules.read_text("utf-8")) if args.rules else None
    catalogue = load_catalogue(custom)
    counts, mistakes = score(args.folders, catalogue, args.split)
    print(f"catalogue {catalogue.version}  split {args.split}  folders {' '.join(map(str, args.folders))}")
    print(f"{'control':30} {'precision':>9} {'low':>5} {'recall':>7} {'low':>5} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4}"
          f" {'unknown':>7}")
    for label in LABELS:
        c = counts[label]
        p, r = metrics(c)
        p_low, r_low = wilson_lower(c["tp"], c["tp"] + c["fp"]), wilson_lower(c["tp"], c["tp"] + c["fn"])
        print(f"{label:30} {p:9.3f} {p_low:5.2f} {r:7.3f} {r_low:5.2f} {c['tp']:4} {c['fp']:4} {c['fn']:4} {c['tn']:4}"
              f" {c['unknown']:7}")
    if args.verbose:
        for name, label, truth, guess in mistakes:
            print(f"  {'FN' if truth else 'FP'} {label:28} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
