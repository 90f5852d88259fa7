"""``python -m reports build RUN.json ... -o OUT.html`` and ``compare OLD.json NEW.json``.

Exit status: 0 fine, 1 ``compare`` found a slowdown or a benchmark NEW lacks, 2 bad usage
or a file that is not a usable run (one line on stderr), 3 a bug in this command (its
traceback on stderr): never 1, which a CI gate reads as "slower".
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import NoReturn

import pandas as pd

from . import build_report, compare, parse_threshold
from .compare import machine_differences
from .data import ReportInputError
from .stats import MAX_ROUNDS, SIGNIFICANCE


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m reports", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    build = sub.add_parser("build", help="rebuild one HTML report from saved runs")
    build.add_argument("runs", nargs="+", help="pytest-benchmark JSON files, any machines")
    build.add_argument("-o", "--output", required=True, help="the HTML file to write")
    cmp = sub.add_parser(
        "compare", help="changes in medians with their intervals; exit 1 on a significant slowdown"
    )
    cmp.add_argument("old")
    cmp.add_argument("new")
    cmp.add_argument("--threshold", default="10%", help="slowdown that counts (default 10%%)")
    return parser


def _build(runs: list[str], output: str) -> int:
    verdicts = build_report(runs, output)
    # with the report on stdout (-o /dev/stdout), the verdicts go to stderr, not into it
    stream = sys.stderr if _is_stdout(output) else sys.stdout
    for run, found in verdicts.items():
        for verdict in found:
            print((f"{run}: " if len(verdicts) > 1 else "") + verdict.line(), file=stream)
    print(output, file=stream)
    return 0


def _is_stdout(path: str) -> bool:
    """Whether ``path`` is the file this process's standard output goes to."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError):
        return False


def _compare(old: str, new: str, threshold_text: str) -> int:
    try:
        threshold = parse_threshold(threshold_text)
    except ValueError:
        raise ReportInputError(
            f"bad --threshold {threshold_text!r}: use a finite percentage above 0, e.g. 10%"
        ) from None
    table = compare(old, new, threshold)
    present = table[~table["missing"]]
    if present.empty:
        raise ReportInputError("the two runs share no benchmark")
    differences = machine_differences(old, new)
    if differences:
        print("the two runs come from different machines: " + "; ".join(differences))
    shown = pd.DataFrame(
        {
            "old": present["old"],
            "new": present["new"],
            "change [95% interval]": [
                _change(row.change, row.change_low, row.change_high) for row in present.itertuples()
            ],
            "p": present["p"].map(lambda p: "no rounds" if pd.isna(p) else f"{p:.3f}"),
            "slower": present["regressed"].map({True: "SLOWER", False: ""})
            + present["contended"].map({True: " (contended)", False: ""}),
        }
    )
    print(shown.to_string())
    if present["subsampled"].any():
        print(
            f"{int(present['subsampled'].sum())} benchmarks have more than {MAX_ROUNDS} rounds: "
            f"their intervals and p come from a random {MAX_ROUNDS} of them (fixed seed)"
        )
    missing = table.index[table["missing"]].tolist()
    if missing:
        print(f"{len(missing)} benchmarks of OLD are missing from NEW:")
        for name in missing:
            print(f"  {name}")
    worse = int(present["regressed"].sum())
    contended = int((present["regressed"] & present["contended"]).sum())
    by_trials = int(present["trials"].sum())
    tests = [
        f"Welch's t on the trial medians of {by_trials}" if by_trials else "",
        f"Mann-Whitney on the rounds of {len(present) - by_trials}"
        if by_trials < len(present)
        else "",
    ]
    print(
        f"{worse} of {len(present)} benchmarks slowed by more than {100 * threshold:g}% "
        f"(significant: p < {SIGNIFICANCE:g}; {', '.join(t for t in tests if t)})"
        + (f"; {contended} of them contended in a run: time them again on a quiet machine"
           if contended else "")
    )  # fmt: skip
    return 1 if worse or missing else 0


def _change(change: float, low: float, high: float) -> str:
    bounds = "[no rounds]" if pd.isna(low) else f"[{100 * low:+.1f}%, {100 * high:+.1f}%]"
    return f"{100 * change:+.1f}% {bounds}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "build":
            return _build(args.runs, args.output)
        return _compare(args.old, args.new, args.threshold)
    except (ReportInputError, OSError) as exc:
        print(f"python -m reports: error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print("python -m reports: internal error (a bug: please report it)", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
