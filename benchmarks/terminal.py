"""What a run prints: progress lines while it runs, its closing summary and trust lines."""

from __future__ import annotations

import contextlib
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # reports imports pandas and matplotlib: only when a run is saved
    from reports.report import Report


class Terminal:
    """The run's lines, through pytest's reporter where there is one."""

    def __init__(self, config: pytest.Config | None) -> None:
        self.config = config

    def line(self, text: str) -> None:
        """One line on the terminal, even while a test's output is being captured."""
        plugins = self.config.pluginmanager if self.config is not None else None
        reporter = plugins.get_plugin("terminalreporter") if plugins else None
        capture = plugins.get_plugin("capturemanager") if plugins else None
        with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
            if reporter is not None:
                reporter.write_line(text)
            else:
                print(text)

    def summary(
        self,
        reporter: Any,
        saved: Path | None,
        report: Report | None,
        interrupted: bool,
    ) -> None:
        """The closing lines: who was fastest, the goals, and how far to trust them."""
        flags: list[str] = []
        verdicts = next(iter(report.verdicts.values())) if report is not None else []
        if report is not None and verdicts:
            from .summary import summary_lines

            df = report.frame
            flags = df[(df["status"] == "ok")]["flag"].tolist()
            reporter.write_sep("-", "im2col-bench")
            for text in summary_lines(df, verdicts, interrupted):
                reporter.write_line(text)
        for text in trust_lines(flags, saved):
            for part in textwrap.wrap(text, 100, subsequent_indent="  "):
                reporter.write_line(part)


def trust_lines(flags: list[str], saved: Path | None) -> list[str]:
    """How many timed rows are contended or noisy, and what to do about it; [] if none."""
    contended, noisy = flags.count("contended"), flags.count("noisy")
    if not (contended or noisy):
        return []
    from reports.stats import NOISY_HALF_WIDTH

    return [
        f"{contended} of {len(flags)} timed rows are contended (other processes took "
        f"cores their threads needed) and {noisy} are noisy (the 95% interval of the "
        f"median is wider than +-{100 * NOISY_HALF_WIDTH:g}%); goals resting on them are "
        "inconclusive.",
        "For numbers you can trust: run on a quieter machine, or with --threads 1, or "
        "rerun just those rows: pytest --benchmark-only --rerun-flagged "
        f"{saved or 'RUN.json'}",
    ]
