"""Whatever a run file holds and wherever the report goes, ``python -m reports`` answers with a
result or one line and exit 2: never a traceback, never exit 1 from ``compare`` for bad input,
never a device or pipe replaced by a file, never memory in proportion to rounds x resamples."""

from __future__ import annotations

import copy
import json
import math
import os
import stat
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import reports
from reports import stats
from reports.__main__ import main
from reports.data import read_run

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis not installed (pip install -e .[dev])"
)
st = hypothesis.strategies

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).parent / "fixtures" / "smoke_run.json"
SMOKE_RUN: dict[str, Any] = json.loads(SMOKE.read_text()) if SMOKE.exists() else {}


def _small_run() -> dict[str, Any]:
    """The smoke run cut to two backends, the BLAS limit and three skipped rows: quick to build."""
    run = copy.deepcopy(SMOKE_RUN)
    if not run:
        return run
    keep = ("naive_loop", "batched_im2col")
    run["benchmarks"] = [
        b
        for b in run["benchmarks"]
        if b["extra_info"].get("backend") in keep or b["extra_info"].get("kind") == "blas_limit"
    ]
    run["im2col_bench"]["skipped"] = run["im2col_bench"]["skipped"][:3]
    return run


SMALL_RUN = _small_run()


def _paths(tree: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node of a JSON tree, the root's first."""
    if isinstance(tree, dict):
        children: Any = tree.items()
    else:
        children = enumerate(tree) if isinstance(tree, list) else []
    return [path] + [p for key, value in children for p in _paths(value, (*path, key))]


NODES = _paths(SMALL_RUN)
#: the nodes a reader leans on most: whole entries and lists, and the fields every row needs
FOCUS = [
    p for p in NODES[1:]
    if len(p) <= 3 or p[-1] in ("median", "data", "rounds", "h", "n", "flops", "format", "fullname")
]  # fmt: skip
#: what a broken writer, a hand edit or a hostile user may leave in any place
JUNK = [None, True, -1, 0, 2**70, 10**30, 1e308, -1e308, 5e-324, math.nan, math.inf, "",
        "sixteen", "<b>x</b>", [], [1, "a", None], {}, {"a": {"b": []}}]  # fmt: skip


@st.composite
def damaged_runs(draw: Any) -> dict[str, Any]:
    """SMALL_RUN with one to three nodes replaced by junk, deleted or duplicated."""
    run = copy.deepcopy(SMALL_RUN)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.one_of(st.sampled_from(NODES[1:]), st.sampled_from(FOCUS)))
        parent: Any = run
        try:
            for key in path[:-1]:
                parent = parent[key]
            parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier damage took this node away
        action = draw(st.sampled_from(["replace", "delete", "duplicate"]))
        if action == "replace":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(JUNK)))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))
        else:
            parent[f"{path[-1]}_copy"] = copy.deepcopy(parent[path[-1]])
    return run


def _answered_cleanly(code: int, err: str, allowed: set[int]) -> None:
    assert code in allowed, err
    assert "Traceback" not in err
    if code == 2:
        assert err.count("\n") == 1, err
        assert err.startswith("python -m reports: error: ")


@pytest.mark.skipif(not SMOKE_RUN, reason="fixtures/smoke_run.json missing")
def test_random_damage_to_a_run_never_gives_a_traceback(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 24: random structural damage to a valid run, through build and compare."""
    folder = tmp_path_factory.mktemp("damaged")
    good = folder / "good.json"
    good.write_text(json.dumps(SMALL_RUN))

    @hypothesis.settings(max_examples=12, deadline=None, database=None)
    @hypothesis.given(run=damaged_runs())
    def check(run: dict[str, Any]) -> None:
        bad = folder / "bad.json"
        bad.write_text(json.dumps(run))
        out = folder / "out.html"
        capsys.readouterr()
        _answered_cleanly(
            main(["build", str(bad), "-o", str(out)]), capsys.readouterr().err, {0, 2}
        )
        for old, new in ((good, bad), (bad, good)):
            code = main(["compare", str(old), str(new)])
            _answered_cleanly(code, capsys.readouterr().err, {0, 1, 2})

    check()


@pytest.mark.skipif(not SMOKE_RUN, reason="fixtures/smoke_run.json missing")
def test_random_damage_never_gets_compare_past_the_reader(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same damage, more of it, through compare alone (a build takes seconds)."""
    folder = tmp_path_factory.mktemp("damaged")
    good = folder / "good.json"
    good.write_text(json.dumps(SMALL_RUN))

    @hypothesis.settings(max_examples=150, deadline=None, database=None)
    @hypothesis.given(run=damaged_runs())
    def check(run: dict[str, Any]) -> None:
        bad = folder / "bad.json"
        bad.write_text(json.dumps(run))
        capsys.readouterr()
        for old, new in ((good, bad), (bad, good)):
            code = main(["compare", str(old), str(new)])
            _answered_cleanly(code, capsys.readouterr().err, {0, 1, 2})

    check()


RAW_FILES = {
    # Python's json refuses integers past 4300 digits with a ValueError of its own
    "a 5000-digit median": ('"median": 0.001', '"median": 1' + "0" * 5000, "median inf is not"),
    "a NaN literal": ('"median": 0.001', '"median": NaN', "median nan is not"),
}


@pytest.mark.skipif(not SMOKE_RUN, reason="fixtures/smoke_run.json missing")
@pytest.mark.parametrize("raw", RAW_FILES.values(), ids=RAW_FILES.keys())
@pytest.mark.parametrize("command", ["build", "compare"])
def test_raw_json_the_dumper_would_not_write_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], raw: tuple[str, str, str], command: str
) -> None:
    text = json.dumps(SMALL_RUN)
    for bench in SMALL_RUN["benchmarks"]:
        bench_text = json.dumps(bench["stats"]["median"])
        text = text.replace(f'"median": {bench_text}', raw[0], 1)
    bad = tmp_path / "bad.json"
    bad.write_text(text.replace(raw[0], raw[1], 1))
    argv = ["build", str(bad), "-o", str(tmp_path / "o.html")] if command == "build" else [
        "compare", str(SMOKE), str(bad)
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert raw[2] in err


@pytest.mark.skipif(not SMOKE_RUN, reason="fixtures/smoke_run.json missing")
def test_a_byte_order_mark_is_not_part_of_the_json(tmp_path: Path) -> None:
    """A run saved by an editor that writes a UTF-8 byte-order mark reads as the run."""
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(SMALL_RUN).encode())
    assert read_run(path) == SMALL_RUN


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.mkdir(), "not a regular file"),
        (lambda p: p.write_text(""), "not JSON (JSONDecodeError)"),
        (lambda p: p.write_bytes(b'{"benchmarks": ["\xff\xfe"]}'), "not JSON (UnicodeDecodeError)"),
        (lambda p: os.mkfifo(p), "not a regular file"),
    ],
    ids=["a directory", "an empty file", "not UTF-8", "a FIFO"],
)
def test_a_run_that_is_no_file_of_json_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Any, message: str
) -> None:
    path = tmp_path / "run.json"
    make(path)
    assert main(["compare", str(path), str(SMOKE)]) == 2
    err = capsys.readouterr().err
    assert err == f"python -m reports: error: {path}: {message}\n"


# the statistics of millions of rounds


def test_millions_of_rounds_take_bounded_memory() -> None:
    """Issue 24: 25 million rounds asked for 373 GiB (2000 resamples of every round)."""
    rounds = np.random.default_rng(3).lognormal(math.log(1e-3), 0.05, 3_000_000).tolist()
    tracemalloc.start()
    try:
        interval = stats.median_interval(rounds)
        ratio = stats.ratio_interval(rounds, rounds)
        p = stats.p_slower(rounds, rounds)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # three float arrays of every round at most; a full bootstrap would need 2000 of them
    assert peak < 3 * 8 * len(rounds)
    assert stats.subsampled(rounds)
    assert interval.low < 1e-3 < interval.high
    assert 1e-3 / interval.value == pytest.approx(1, abs=0.01)
    assert ratio.low < 1 < ratio.high
    assert p > 0.05


@pytest.mark.skipif(not SMOKE_RUN, reason="fixtures/smoke_run.json missing")
def test_a_run_with_millions_of_rounds_is_read_in_a_small_multiple_of_its_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = copy.deepcopy(SMALL_RUN)
    rounds = np.random.default_rng(4).lognormal(math.log(2e-3), 0.05, 2_000_000)
    run["benchmarks"][0]["stats"]["data"] = rounds.tolist()
    path = tmp_path / "long.json"
    path.write_text(json.dumps(run))
    tracemalloc.start()
    try:
        read_run(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * path.stat().st_size
    capsys.readouterr()
    assert main(["compare", str(path), str(path)]) == 0
    out = capsys.readouterr().out
    assert f"their intervals and p come from a random {stats.MAX_ROUNDS} of them" in out


# where a report may be written


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SMALL_RUN in a file."""
    path = tmp_path_factory.mktemp("small") / "small.json"
    path.write_text(json.dumps(SMALL_RUN))
    return path


def _build(run: Path, out: str | Path, stdout: Any = subprocess.PIPE) -> Any:
    """``python -m reports build RUN -o OUT``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "reports", "build", str(run), "-o", str(out)],
        cwd=ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_a_device_is_written_to_never_replaced(small: Path) -> None:
    """Issue 24: as root, `-o /dev/null` renamed a file over the device node."""
    null = os.stat("/dev/null")
    proc = _build(small, "/dev/null")
    assert proc.returncode == 0, proc.stderr
    proc = _build(small, "/dev/full")
    assert proc.returncode == 2
    assert proc.stderr == (
        "python -m reports: error: [Errno 28] No space left on device: '/dev/full'\n"
    )
    for device in ("/dev/null", "/dev/full"):
        assert stat.S_ISCHR(os.stat(device).st_mode)
    assert os.stat("/dev/null").st_ino == null.st_ino
    assert not [p for p in os.listdir("/dev") if p.endswith(".tmp")]


def test_dev_stdout_takes_the_report(tmp_path: Path, small: Path) -> None:
    proc = _build(small, "/dev/stdout")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("<!DOCTYPE html>")
    assert proc.stdout.endswith("</html>\n")
    # and when the shell sends stdout to a file, that file gets the report
    out = tmp_path / "shell.html"
    with out.open("w") as handle:
        proc = _build(small, "/dev/stdout", stdout=handle)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert out.read_text().endswith("</html>\n")
    assert [p.name for p in tmp_path.iterdir()] == ["shell.html"]


def test_a_fifo_is_written_to_never_replaced(tmp_path: Path, small: Path) -> None:
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    proc = _build(small, fifo)
    reader.join(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert received[0].startswith("<!DOCTYPE html>")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["report.fifo"]


def test_an_output_that_is_a_directory_is_one_line(tmp_path: Path, small: Path) -> None:
    proc = _build(small, tmp_path)
    assert proc.returncode == 2
    assert proc.stderr == f"python -m reports: error: [Errno 21] Is a directory: '{tmp_path}'\n"


def test_errors_name_the_output_not_a_temporary_file(tmp_path: Path, small: Path) -> None:
    """Issue 24: `build -o` errors named `.out.html.<hex>.tmp`."""
    out = tmp_path / "missing" / "out.html"
    proc = _build(small, out)
    assert proc.returncode == 2
    assert (
        proc.stderr == f"python -m reports: error: [Errno 2] No such file or directory: '{out}'\n"
    )


def test_a_symbolic_link_to_a_report_is_written_through(tmp_path: Path, small: Path) -> None:
    target = tmp_path / "runs" / "report.html"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "latest.html"
    link.symlink_to(target)
    proc = _build(small, link)
    assert proc.returncode == 0, proc.stderr
    assert link.is_symlink()
    assert target.read_text().startswith("<!DOCTYPE html>")


def test_the_index_leaves_out_a_crafted_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "good.json").write_text(json.dumps(SMALL_RUN))
    twice = copy.deepcopy(SMALL_RUN)
    twice["benchmarks"].append(twice["benchmarks"][0])
    (runs / "twice.json").write_text(json.dumps(twice))
    for name in ("good", "twice"):
        (runs / f"{name}.html").write_text("<p>report</p>")
    index = reports.update_index(tmp_path).read_text()
    assert "runs/good.html" in index
    assert "runs/twice.html" not in index


@pytest.mark.skipif(not SMOKE_RUN, reason="fixtures/smoke_run.json missing")
def test_null_counts_the_harness_writes_are_read(tmp_path: Path) -> None:
    """The harness writes traffic_bytes null for the im2col step's rows: not bad input."""
    run = copy.deepcopy(SMALL_RUN)
    run["benchmarks"][0]["extra_info"].update(kind="phase", traffic_bytes=None)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(run))
    assert read_run(path)["benchmarks"][0]["extra_info"]["traffic_bytes"] is None


def test_an_output_with_a_trailing_slash_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`-o reports/new/` wrote a file called `new`."""
    out = f"{tmp_path}/new/"
    assert main(["build", str(SMOKE), "-o", out]) == 2
    assert capsys.readouterr().err == (
        f"python -m reports: error: {out}: names a folder; give the report's file name\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_run_that_is_a_looping_link_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = tmp_path / "loop.json"
    loop.symlink_to(loop)
    assert main(["compare", str(loop), str(SMOKE)]) == 2
    assert capsys.readouterr().err == (
        f"python -m reports: error: {loop}: no such file (a symbolic link that leads nowhere)\n"
    )
