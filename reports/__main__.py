"""``python -m reports build RUN.json ... -o OUT.html`` and ``compare OLD.json NEW.json``."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from . import build_report, compare, parse_threshold
from .data import ReportInputError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    build = sub.add_parser("build", help="rebuild one HTML report from saved runs")
    build.add_argument("runs", nargs="+", help="pytest-benchmark JSON files, any machines")
    build.add_argument("-o", "--output", required=True, help="the HTML file to write")
    cmp = sub.add_parser("compare", help="changes in medians; exit 1 on a regression")
    cmp.add_argument("old")
    cmp.add_argument("new")
    cmp.add_argument("--threshold", default="10%", help="slowdown that counts (default 10%%)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            for line in build_report(args.runs, args.output):
                print(line)
            print(args.output)
            return 0
        try:
            threshold = parse_threshold(args.threshold)
        except ValueError:
            raise ReportInputError(f"bad --threshold {args.threshold!r}: use e.g. 10%") from None
        table = compare(args.old, args.new, threshold)
    except (ReportInputError, OSError) as exc:
        print(f"python -m reports: error: {exc}", file=sys.stderr)
        return 2
    if table.empty:
        print("python -m reports: error: the two runs share no benchmark", file=sys.stderr)
        return 2
    shown = table.assign(change=(100 * table["change"]).map("{:+.1f}%".format))
    print(shown.to_string())
    worse = int(table["regressed"].sum())
    print(f"{worse} of {len(table)} benchmarks slowed by more than {100 * threshold:g}%")
    return 1 if worse else 0


if __name__ == "__main__":
    sys.exit(main())
