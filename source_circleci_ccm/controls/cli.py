"""circleci-ccm-controls: evaluate local CircleCI config files with the security-controls catalogue.

    circleci-ccm-controls PATH... [--json] [--rules FILE.yaml] [--require control,...]

Exit codes: 0 ok; 1 a --require'd control did not pass; 2 usage error (missing
file, bad rules file, unknown required control).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .catalogue import load_catalogue, load_rules_file
from .evaluate import evaluate_config


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no traceback
        print(f"circleci-ccm-controls: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _fail(message: str) -> int:
    print(f"circleci-ccm-controls: error: {message}", file=sys.stderr)
    return 2


def _table(path: str, results) -> str:
    lines = [f"{path}", f"  {'control':30} {'status':15} evidence"]
    for control, result in results.items():
        first = result.evidence[0] if result.evidence else None
        if first and (result.status == "pass" or not result.reason):
            detail = f"{first['where']}: {first.get('matched') or ''}"
        else:
            detail = result.reason
        lines.append(f"  {control:30} {result.status:15} {(detail or '')[:120]}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="circleci-ccm-controls", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="CircleCI config file(s), source form")
    parser.add_argument("--json", action="store_true", help="print one JSON object keyed by path")
    parser.add_argument("--rules", metavar="FILE.yaml", help="extra rules (same id overrides a packaged rule)")
    parser.add_argument("--require", metavar="control,...", default="",
                        help="exit 1 when any of these controls does not pass")
    args = parser.parse_args(argv)

    custom = None
    if args.rules:
        try:
            custom = load_rules_file(Path(args.rules).read_text("utf-8"))
        except OSError as exc:
            return _fail(f"cannot read rules file {args.rules}: {exc.strerror or exc}")
        except ValueError as exc:
            return _fail(f"bad rules file {args.rules}: {exc}")
    required = [c.strip() for c in args.require.split(",") if c.strip()]
    try:
        catalogue = load_catalogue(custom, required_controls=required)
    except ValueError as exc:
        return _fail(f"bad rules file {args.rules}: {exc}" if args.rules and "rule" in str(exc) else str(exc))

    texts = {}
    for path in args.paths:
        try:
            texts[path] = Path(path).read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return _fail(f"no such file: {path}")
        except OSError as exc:
            return _fail(f"cannot read {path}: {exc.strerror or exc}")

    all_results = {path: evaluate_config(text, catalogue) for path, text in texts.items()}
    if args.json:
        payload = {path: {c: {"status": r.status, "evidence": r.evidence, "reason": r.reason,
                              "frameworks": r.frameworks}
                          for c, r in results.items()}
                   for path, results in all_results.items()}
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(f"catalogue {catalogue.version}")
        for path, results in all_results.items():
            print(_table(path, results))
    missing = [(p, c) for p, results in all_results.items() for c in required
               if c in results and results[c].status != "pass"]
    if missing:
        if not args.json:
            for p, c in missing:
                print(f"required control {c} does not pass in {p}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
