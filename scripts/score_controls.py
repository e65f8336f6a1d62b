#!/usr/bin/env python
"""Score the controls engine against a labelled folder of CircleCI configs.

Usage: python scripts/score_controls.py LABELLED_DIR [--rules FILE.yaml] [--verbose]

LABELLED_DIR holds *.yml files and labels.json ({file: {label: {"value": bool}}}).
A label is predicted true when our status is ``pass`` (not_applicable, fail and
unknown count as false); ``has_deploy`` comes from deploy detection.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from source_circleci_ccm.controls import evaluate_config, load_catalogue, load_rules_file  # noqa: E402

LABELS = ("dependency_scanning", "sast", "image_scanning", "secret_scanning", "iac_scanning",
          "automated_tests", "has_deploy", "approval_gate_before_deploy", "tests_before_deploy")


def predict(text: str, catalogue) -> dict[str, bool]:
    results = evaluate_config(text, catalogue, include_deploy=True)
    out = {c: r.status == "pass" for c, r in results.items()}
    out["has_deploy"] = out.pop("deploy")
    return out


def score(folder: Path, catalogue) -> tuple[dict[str, dict], list[tuple[str, str, bool, bool]]]:
    labels = json.loads((folder / "labels.json").read_text("utf-8"))
    counts = {label: {"tp": 0, "fp": 0, "fn": 0, "tn": 0} for label in LABELS}
    mistakes = []
    for name in sorted(labels):
        path = folder / name
        if not path.is_file():
            continue
        predicted = predict(path.read_text("utf-8", errors="replace"), catalogue)
        for label in LABELS:
            if label not in labels[name]:
                continue
            truth = bool(labels[name][label].get("value"))
            guess = bool(predicted.get(label))
            key = ("tp" if guess else "fn") if truth else ("fp" if guess else "tn")
            counts[label][key] += 1
            if guess != truth:
                mistakes.append((name, label, truth, guess))
    return counts, mistakes


def metrics(c: dict) -> tuple[float, float]:
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
    return precision, recall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--rules", type=Path, help="extra/override rules YAML")
    parser.add_argument("--verbose", "-v", action="store_true", help="list every mismatch")
    args = parser.parse_args(argv)
    if not (args.folder / "labels.json").is_file():
        print(f"error: {args.folder} has no labels.json", file=sys.stderr)
        return 2
    custom = load_rules_file(args.rules.read_text("utf-8")) if args.rules else None
    catalogue = load_catalogue(custom)
    counts, mistakes = score(args.folder, catalogue)
    print(f"catalogue {catalogue.version}  folder {args.folder}")
    print(f"{'control':30} {'precision':>9} {'recall':>7} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4}")
    for label in LABELS:
        c = counts[label]
        p, r = metrics(c)
        print(f"{label:30} {p:9.3f} {r:7.3f} {c['tp']:4} {c['fp']:4} {c['fn']:4} {c['tn']:4}")
    if args.verbose:
        for name, label, truth, guess in mistakes:
            print(f"  {'FN' if truth else 'FP'} {label:28} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
