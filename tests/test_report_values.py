"""Report values on synthetic runs whose answers are known: which cell of each row is marked.

The smoke run's report is checked for the marks' presence (tests/test_reports.py); here the
winner changes from size to size and pass to pass, so a mark on the wrong cell (the slowest,
the first column, one row's winner copied to the next) fails.
"""

from __future__ import annotations

import re
from pathlib import Path

import reports
from tests.test_reports import sweep_run


def marked_cells(html: str) -> dict[tuple[str, str], list[str]]:
    """(pass, size) -> the backends whose cell in that row of the results table is marked."""
    table = html.split("<table id='results'>")[1].split("</table>")[0]
    rows = table.split("<tr")
    backends = re.findall(r"<th class='b'[^>]*>([^<]+)</th>", rows[1])
    marked: dict[tuple[str, str], list[str]] = {}
    pass_ = ""
    for row in rows[2:]:
        if "class='pass'" in row:
            pass_ = re.search(r"<th colspan='\d+'>([^<]+)</th>", row).group(1)  # type: ignore[union-attr]
            continue
        size, *cells = re.findall(r"<td[^>]*>.*?</td>", row)
        classes = [re.match(r"<td class='(\w+)'", c) for c in cells]
        label = re.sub(r"<[^>]+>", "", size)
        marked[(pass_, label)] = [
            b for b, c in zip(backends, classes, strict=True) if c and c.group(1) == "fastest"
        ]
    return marked


def test_the_fastest_cell_of_each_row_is_the_one_marked(tmp_path: Path) -> None:
    path = sweep_run(
        tmp_path,
        {
            "naive_loop": {"forward": {16: 1.0, 32: 4.0, 64: 16.0}, "step": {16: 3.0, 32: 12.0}},
            "alpha": {"forward": {16: 0.1, 32: 0.5, 64: 2.0}, "step": {16: 0.9, 32: 0.6}},
            "zulu": {"forward": {16: 0.2, 32: 0.3, 64: 3.0}, "step": {16: 0.4, 32: 2.0}},
        },
    )
    reports.build_report([path], tmp_path / "out.html")
    marked = marked_cells((tmp_path / "out.html").read_text())
    assert marked == {
        ("forward", "16px"): ["alpha"],
        ("forward", "32px"): ["zulu"],
        ("forward", "64px"): ["alpha"],
        ("step", "16px"): ["zulu"],
        ("step", "32px"): ["alpha"],
    }


def test_where_the_baseline_is_fastest_its_cell_is_marked(tmp_path: Path) -> None:
    path = sweep_run(
        tmp_path,
        {"naive_loop": {"forward": {32: 0.5}}, "slow": {"forward": {32: 0.7}}},
    )
    reports.build_report([path], tmp_path / "out.html")
    assert marked_cells((tmp_path / "out.html").read_text()) == {
        ("forward", "32px"): ["naive_loop"]
    }
