"""The benchmark harness, run as a user runs it: ``pytest --benchmark-only`` in a subprocess.

Fake backends (tests/fixtures/fake_backends.py, loaded as a plugin) keep these runs short
and independent of the real ones. No test looks at a timing. The runs load the plugin with
``-p benchmarks.plugin``, as a checkout that is not installed must.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import impls
from benchmarks.trials import DEFAULT_TRIALS

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR
#: far too big for any machine: 8 x 100000 x 100000 x 32 float32 is 9.3 TiB of input alone
HUGE = 100_000


def harness_command(report_dir: Path, *args: str, plugin: bool = True) -> list[str]:
    """``pytest --benchmark-only --preset smoke`` on the fake backends, from the repository."""
    return [
        sys.executable, "-m", "pytest", *(["-p", "benchmarks.plugin"] if plugin else []),
        "--benchmark-only", "--preset", "smoke", "--report-dir", str(report_dir),
        "-p", "fake_backends", "-p", "no:cacheprovider", "-q", *args,
    ]  # fmt: skip


def harness_env(env: dict[str, str] | None = None) -> dict[str, str]:
    paths = os.pathsep.join([str(FIXTURES), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": paths, **(env or {})}


def _default_ctrl_c() -> None:
    # a run started from a shell's background job would otherwise ignore SIGINT
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_harness(report_dir: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        harness_command(report_dir, *args), cwd=ROOT, capture_output=True, text=True,
        timeout=300, env=harness_env(env), preexec_fn=_default_ctrl_c,
    )  # fmt: skip


def output(proc: Any) -> str:
    return proc.stdout[-3000:] + proc.stderr[-3000:]


def saved_runs(report_dir: Path) -> list[Path]:
    return sorted((report_dir / "runs").glob("*.json"))


def saved_run(report_dir: Path) -> dict[str, Any]:
    (path,) = saved_runs(report_dir)
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A run with a raising backend and a size no machine can hold; ``--report-dir DIR``
    (with a space) names a directory that already exists."""
    report_dir = tmp_path_factory.mktemp("reports")
    proc = run_harness(
        report_dir, "--backends", "fake_ok,fake_broken,reference", "--sizes", f"8,12,{HUGE}"
    )
    return proc, report_dir


def test_a_raising_backend_fails_only_its_own_benchmarks(broken_run: tuple[Any, Path]) -> None:
    proc, report_dir = broken_run
    assert proc.returncode == 1, output(proc)
    run = saved_run(report_dir)
    timed = {b["extra_info"]["backend"] for b in run["benchmarks"] if "backend" in b["extra_info"]}
    assert timed == {"fake_ok"}
    failed = run["im2col_bench"]["failed"]
    assert {f["backend"] for f in failed} == {"fake_broken"}
    assert len(failed) == 2 * 3  # two sizes that fit in memory, three passes
    assert all("planted failure" in f["reason"] for f in failed)
    # its failure lines say what failed, with no warning that the fixture went unused
    assert "not used at all" not in proc.stdout + proc.stderr


def test_every_pass_and_the_blas_limit_are_in_the_json(broken_run: tuple[Any, Path]) -> None:
    run = saved_run(broken_run[1])
    infos = [b["extra_info"] for b in run["benchmarks"]]
    ok = [i for i in infos if i.get("backend") == "fake_ok"]
    assert {(i["pass"], i["h"]) for i in ok} == {
        (p, s) for p in ("forward", "backward", "step") for s in (8, 12)
    }
    assert all(i["flops"] > 0 and i["cols_bytes"] > 0 for i in ok)
    # measured in a child process, which found the fake backend through its module
    steps = [i for i in ok if i["pass"] == "step"]
    assert all(i["peak_extra_bytes"] >= 0 and i["high_water"] > 0 for i in steps), steps
    assert all(i["traffic_bytes"] > 0 and i["memory_estimate_bytes"] > 0 for i in ok)
    assert any(i.get("kind") == "blas_limit" for i in infos)
    machine = run["machine_info"]
    assert {"blas", "numba_version", "numba_cuda_version", "gpu", "threads"} <= set(machine)
    for dtype in ("float32", "float64"):
        assert machine["peaks"][dtype]["peak_gflops"] > 0
    assert machine["peaks"]["bandwidth_gbs"] > 0


def test_timed_skipped_and_failed_rows_have_the_same_fields(broken_run: tuple[Any, Path]) -> None:
    run = saved_run(broken_run[1])
    extra = run["im2col_bench"]
    timed = [b["extra_info"] for b in run["benchmarks"] if "backend" in b["extra_info"]]
    rows = {"ok": timed[0], "skipped": extra["skipped"][0], "failed": extra["failed"][0]}
    assert {status: row["status"] for status, row in rows.items()} == {s: s for s in rows}
    measured = {"warmup_s", "second_call_s", "peak_extra_bytes", "resident_before",
                "high_water", "outputs_bytes", "memory_method", "blocks", "settle_s",
                "untimed_calls", "window_topped_up_s", "round_trial", "visits",
                "wall_s", "own_cpu_s", "others_cpu_s", "others_cores", "cores", "load_before",
                "load_after", "contended", "error_y", "error_dx", "error_dw"}  # fmt: skip
    assert set(rows["ok"]) - measured == set(rows["skipped"]) == set(rows["failed"])


def test_each_timed_pass_carries_its_error_against_the_float64_reference(
    broken_run: tuple[Any, Path],
) -> None:
    """fake_ok's y is right up to float32 rounding and its dx and dw are zeros: error 1."""
    run = saved_run(broken_run[1])
    ok = [b["extra_info"] for b in run["benchmarks"] if b["extra_info"].get("backend") == "fake_ok"]
    assert ok
    for info in ok:
        assert 0 < info["error_y"] < 1e-5, info
        assert info["error_dx"] == info["error_dw"] == 1.0, info
    assert run["im2col_bench"]["accuracy"]["oracle"] == "reference in float64"


def test_the_oracle_is_left_out_with_its_reason(broken_run: tuple[Any, Path]) -> None:
    left_out = saved_run(broken_run[1])["im2col_bench"]["left_out"]
    assert left_out == [{"backend": "reference", "reason": "oracle, not a contender"}]


def test_the_last_line_is_the_report_and_the_index_lists_it(broken_run: tuple[Any, Path]) -> None:
    proc, report_dir = broken_run
    report = Path(proc.stdout.strip().splitlines()[-1])
    assert report.parent == report_dir / "runs"
    assert report.suffix == ".html"
    html = report.read_text()
    assert "fake_broken" in html
    assert "planted failure" in html
    assert report.name in (report_dir / "index.html").read_text()


def test_report_dir_with_a_space_before_an_existing_dir(broken_run: tuple[Any, Path]) -> None:
    """Issue row 6: `--report-dir DIR`, DIR existing, was taken for a test path."""
    proc, report_dir = broken_run
    assert "unrecognized arguments" not in output(proc)
    assert len(saved_runs(report_dir)) == 1


def test_a_configuration_too_big_for_memory_is_skipped_not_allocated(
    broken_run: tuple[Any, Path],
) -> None:
    """Issue row 3: nothing asked numpy for the 9.3 TiB; each case was skipped with its estimate."""
    proc, report_dir = broken_run
    assert "Unable to allocate" not in output(proc)
    extra = saved_run(report_dir)["im2col_bench"]
    huge = [s for s in extra["skipped"] if s["h"] == HUGE]
    assert {(s["backend"], s["pass"]) for s in huge} == {
        (b, p) for b in ("fake_ok", "fake_broken") for p in ("forward", "backward", "step")
    }
    assert all(re.search(r"needs an estimated [\d.e+]+ GiB", s["reason"]) for s in huge)
    assert all("--memory-limit" in s["reason"] for s in huge)
    assert not [f for f in extra["failed"] if f["h"] == HUGE]


def test_memory_limit_moves_the_limit(tmp_path: Path) -> None:
    proc = run_harness(
        tmp_path, "--backends", "fake_ok", "--sizes", "8", "--memory-limit", "1e-9", "-rs"
    )
    assert proc.returncode == 0, output(proc)
    assert "too big: needs an estimated" in proc.stdout
    assert "over 1e-09% of the" in proc.stdout
    assert " passed" not in proc.stdout
    assert not saved_runs(tmp_path)


def test_the_memory_estimate_counts_the_column_buffer_of_a_big_case() -> None:
    from benchmarks.matrix import sweep_conv
    from benchmarks.timing import memory_needed

    conv = sweep_conv(1200)
    backend = impls.get_backend("batched_im2col")
    cols = conv.geometry().cols_bytes(4)
    assert cols > 12 * 2**30
    assert memory_needed(backend, conv) > 2 * cols  # the buffer and its gradient


def test_a_backend_can_declare_a_smaller_working_memory() -> None:
    from benchmarks.matrix import Conv
    from benchmarks.timing import memory_needed

    class NoBuffer(impls.Backend):
        def memory_estimate(self, geom: impls.ConvGeometry, dtype: Any = np.float32) -> int:
            return 0

    conv = Conv("default", n=1, size=64, c_in=1, c_out=1, k=3)
    default = impls.get_backend("batched_im2col")
    inputs_and_outputs = memory_needed(NoBuffer(), conv)
    assert inputs_and_outputs == 4 * (2 * 64 * 64 + 2 * 9 + 2 + 2 * 64 * 64)
    assert memory_needed(default, conv) > inputs_and_outputs


def test_ctrl_c_still_leaves_the_json_and_a_report(tmp_path: Path) -> None:
    proc = run_harness(
        tmp_path, "--backends", "fake_ok,fake_interrupt", "--sizes", "8,12",
        env={"FAKE_INTERRUPT": "1"},
    )  # fmt: skip
    assert proc.returncode == 2, output(proc)
    run = saved_run(tmp_path)
    assert run["im2col_bench"]["interrupted"] is True
    assert any(b["extra_info"].get("backend") == "fake_interrupt" for b in run["benchmarks"])
    report = Path(proc.stdout.strip().splitlines()[-1])
    assert "Interrupted" in report.read_text()


def test_a_second_ctrl_c_during_the_save_still_leaves_an_interrupted_json(tmp_path: Path) -> None:
    """Issue row 12: a second SIGINT while the JSON was written lost it, or its flag."""
    proc = run_harness(
        tmp_path, "--backends", "fake_ok,fake_interrupt", "--sizes", "8,12",
        env={"FAKE_INTERRUPT": "1", "FAKE_SECOND_SIGINT": "1"},
    )  # fmt: skip
    assert proc.returncode == 2, output(proc)
    (path,) = saved_runs(tmp_path)
    assert json.loads(path.read_text())["im2col_bench"]["interrupted"] is True
    last = proc.stdout.strip().splitlines()[-1]
    assert last == f"report interrupted; rebuild it: python -m reports build {path} -o " + str(
        path.with_suffix(".html")
    )
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("delay", [0.01, 0.05, 0.15, 0.4])
def test_two_real_ctrl_c_leave_an_interrupted_json_and_no_traceback(
    tmp_path: Path, delay: float
) -> None:
    """Issue row 12 as `timeout -s INT` does it: two SIGINTs, the second `delay` s later."""
    proc = run_harness(
        tmp_path, "--backends", "fake_ok,fake_interrupt", "--sizes", "8,12",
        env={"FAKE_INTERRUPT": f"twice:{delay}"},
    )  # fmt: skip
    assert proc.returncode == 2, output(proc)
    (path,) = saved_runs(tmp_path)
    assert json.loads(path.read_text())["im2col_bench"]["interrupted"] is True
    assert "Traceback" not in proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(("report interrupted; rebuild it", str(tmp_path)))


def test_a_sigterm_leaves_an_interrupted_json_and_a_report(tmp_path: Path) -> None:
    """A CI job's timeout sends SIGTERM: the run ended with nothing saved (exit 143)."""
    proc = run_harness(
        tmp_path, "--backends", "fake_ok,fake_interrupt", "--sizes", "8,12",
        env={"FAKE_INTERRUPT": "sigterm"},
    )  # fmt: skip
    assert proc.returncode == 2, output(proc)
    (path,) = saved_runs(tmp_path)
    run = json.loads(path.read_text())
    assert run["im2col_bench"]["interrupted"] is True
    assert any(b["extra_info"].get("backend") == "fake_ok" for b in run["benchmarks"])
    assert path.with_suffix(".html").is_file()
    assert "Traceback" not in proc.stdout + proc.stderr


def planted_names(report_dir: Path, seconds: int) -> dict[Path, str]:
    """Files under every run name the next ``seconds`` could give, as today's harness names runs."""
    node = re.sub(r"[^A-Za-z0-9_.-]+", "-", socket.gethostname())[:40]
    now = time.time()
    stamps = {time.strftime("%Y%m%d-%H%M%S", time.localtime(now + s)) for s in range(seconds)}
    runs = report_dir / "runs"
    runs.mkdir(parents=True)
    planted = {runs / f"{stamp}_{node}_smoke.json": f"planted {stamp}" for stamp in stamps}
    for path, text in planted.items():
        path.write_text(text)
    return planted


def test_two_runs_at_once_never_overwrite_a_run_and_both_reach_the_index(tmp_path: Path) -> None:
    """Issue row 1: runs finishing in the same second shared a name and one was lost."""
    planted = planted_names(tmp_path, seconds=300)
    command = harness_command(tmp_path, "--backends", "fake_ok", "--sizes", "8")
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [subprocess.Popen(command, cwd=ROOT, env=harness_env(), **pipes) for _ in range(2)]
    outputs = [proc.communicate(timeout=300) for proc in runs]
    assert [proc.returncode for proc in runs] == [0, 0], outputs
    assert {path: path.read_text() for path in planted} == planted
    reports = {Path(stdout.strip().splitlines()[-1]) for stdout, _ in outputs}
    assert len(reports) == 2
    index = (tmp_path / "index.html").read_text()
    for report in reports:
        assert json.loads(report.with_suffix(".json").read_text())["benchmarks"]
        assert report.name in index


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_an_unwritable_report_dir_stops_the_run_before_any_benchmark(
    tmp_path: Path, where: str
) -> None:
    """Issue row 2: every benchmark ran first, then a traceback, and nothing was saved."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    report_dir = blocker if where == "a file" else blocker / "reports"
    proc = run_harness(report_dir, "--backends", "fake_ok", "--sizes", "8")
    assert proc.returncode == USAGE_ERROR, output(proc)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
    assert errors == [f"ERROR: --report-dir {report_dir}: cannot write there (Not a directory)"]
    assert "passed" not in proc.stdout
    assert blocker.read_text() == "not a directory"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--backends", "numba_lop", "--backends: Unknown backend 'numba_lop'; known backends:"),
        ("--backends", ",", "--backends: name at least one of"),
        ("--sizes", "16,abc", "--sizes takes comma-separated integers"),
        ("--sizes", "0", "--sizes takes positive integers"),
        ("--threads", "0", "--threads takes positive integers"),
        ("--threads", "two", "--threads takes comma-separated integers"),
        ("--threads", "1,2,1", "--threads names a count twice"),
        ("--preset", "huge", "--preset: 'huge' is not one of smoke, default, full"),
        ("--memory-limit", "nan", "--memory-limit takes a percentage in (0, 100]"),
        ("--memory-limit", "150%", "--memory-limit takes a percentage in (0, 100]"),
    ],
)
def test_a_bad_option_is_one_usage_line(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    """Issue row 8: an unknown backend gave the right message inside a pluggy traceback."""
    proc = run_harness(tmp_path, option, value)
    assert proc.returncode == USAGE_ERROR, output(proc)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    (error,) = [line for line in text.splitlines() if line.strip()]
    assert error.startswith(f"ERROR: {message}")
    assert not (tmp_path / "runs").exists()


def test_benchmark_disable_runs_each_benchmark_once_as_a_test(tmp_path: Path) -> None:
    """Issue row 9: every benchmark failed with 'NoneType' object has no attribute 'stats'."""
    command = harness_command(tmp_path, "benchmarks", "--backends", "fake_ok", "--sizes", "8")
    command[command.index("--benchmark-only")] = "--benchmark-disable"
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=harness_env()
    )
    assert proc.returncode == 0, output(proc)
    assert re.search(r"\b4 passed\b", proc.stdout)  # three passes and the BLAS limit
    assert not (tmp_path / "runs").exists() or not saved_runs(tmp_path)


def test_plain_pytest_collects_the_tests_only() -> None:
    """Issue row 10: plain pytest timed the benchmarks on the tests' leftover budget."""
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "benchmarks.plugin", "--collect-only", "-q",
         "-p", "no:cacheprovider"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=harness_env(),
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    collected = [line for line in proc.stdout.splitlines() if "::" in line]
    assert any(line.startswith("tests/") for line in collected)
    assert not [line for line in collected if line.startswith("benchmarks/")]


def test_a_run_that_times_no_backend_writes_no_report(tmp_path: Path) -> None:
    """Issue row 10: a run whose every backend case was skipped still wrote an empty report."""
    proc = run_harness(tmp_path, "--backends", "fake_ok", "--sizes", "8", "-k", "blas_limit")
    assert proc.returncode == 0, output(proc)
    assert proc.stdout.strip().splitlines()[-1] == "no backend was timed, so no run was saved"
    assert not saved_runs(tmp_path)
    assert not (tmp_path / "index.html").exists()


def _installed_from_here() -> bool:
    """Whether pip installed this very checkout (as CI does), so its entry point is live."""
    # the checkout's own im2col_bench.egg-info (setuptools leaves it beside pyproject.toml)
    # is found too: look at every distribution of that name for pip's record
    for dist in metadata.distributions(name="im2col-bench"):
        text = dist.read_text("direct_url.json")
        if text and json.loads(text).get("url") == ROOT.as_uri():
            return True
    return False


@pytest.mark.skipif(not _installed_from_here(), reason="this checkout is not the installed one")
@pytest.mark.parametrize("with_flag", [False, True], ids=["entry-point", "entry-point-and-p"])
def test_an_installed_plugin_needs_no_flag_and_survives_one(
    tmp_path: Path, with_flag: bool
) -> None:
    """Issue row 6 as users meet it: no flag, `--report-dir DIR` with a space, DIR existing."""
    command = harness_command(tmp_path, "--backends", "fake_ok", "--sizes", "8", plugin=with_flag)
    proc = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=300, env=harness_env()
    )
    assert proc.returncode == 0, output(proc)
    assert len(saved_runs(tmp_path)) == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_a_busy_process_beside_the_rounds_is_seen_and_flagged(tmp_path: Path) -> None:
    """The run and a busy process share one CPU: every timed row is contended, and the
    terminal and the report say so. Nothing here looks at a time."""
    cpu = min(os.sched_getaffinity(0))

    def one_cpu() -> None:
        _default_ctrl_c()
        os.sched_setaffinity(0, {cpu})

    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=one_cpu)
    try:
        proc = subprocess.run(
            harness_command(tmp_path, "--backends", "fake_ok", "--sizes", "8"),
            cwd=ROOT, capture_output=True, text=True, timeout=300, env=harness_env(),
            preexec_fn=one_cpu,
        )  # fmt: skip
    finally:
        busy.kill()
        busy.wait()
    assert proc.returncode == 0, output(proc)
    run = saved_run(tmp_path)
    rows = [b["extra_info"] for b in run["benchmarks"]]
    assert rows
    assert all(row["contended"] for row in rows), [row["others_cores"] for row in rows]
    assert all(row["cores"] == 1 and row["threads"] == 1 for row in rows)
    assert "other processes are using" in proc.stdout
    assert f"{len(rows)} of {len(rows)} timed rows are contended" in proc.stdout
    assert "--threads 1" in proc.stdout
    report = Path(proc.stdout.strip().splitlines()[-1]).read_text()
    assert f"{len(rows)} of {len(rows)} timed rows are <b>contended</b>" in report
    table = report[report.index("<table id='results'>") :].split("</table>")[0]
    conv = [row for row in rows if row["kind"] == "conv"]
    assert table.count("&#9888;") == len(conv)  # each contended cell of a backend is marked


def test_rerun_flagged_times_only_the_flagged_rows_and_keeps_the_others(tmp_path: Path) -> None:
    first = tmp_path / "first"
    proc = run_harness(first, "--backends", "fake_ok", "--sizes", "8")
    assert proc.returncode == 0, output(proc)
    (path,) = saved_runs(first)
    run = json.loads(path.read_text())
    # every row steady and uncontended but one: the row to rerun
    for entry in run["benchmarks"]:
        entry["stats"]["data"] = [1e-3] * 5
        entry["extra_info"]["contended"] = False
    victim = run["benchmarks"][1]
    victim["extra_info"]["contended"] = True
    path.write_text(json.dumps(run))
    proc = run_harness(tmp_path / "second", "--rerun-flagged", str(path), "-rA")
    assert proc.returncode == 0, output(proc)
    # its sizing visit and one visit a trial
    visits = 1 + DEFAULT_TRIALS
    assert re.search(rf"\b{visits} passed, \d+ deselected\b", proc.stdout), output(proc)
    rerun = saved_run(tmp_path / "second")
    assert rerun["im2col_bench"]["rerun_of"] == str(path)
    names = {b["fullname"]: b for b in rerun["benchmarks"]}
    assert set(names) == {b["fullname"] for b in run["benchmarks"]}
    assert "carried_from" not in names[victim["fullname"]]["extra_info"]
    assert names[victim["fullname"]]["stats"]["data"] != [1e-3] * 5
    carried = [b for name, b in names.items() if name != victim["fullname"]]
    assert all(b["extra_info"]["carried_from"] == str(path) for b in carried)
    assert all(b["stats"]["data"] == [1e-3] * 5 for b in carried)


def test_rerun_flagged_of_a_run_with_nothing_flagged_is_a_usage_error(tmp_path: Path) -> None:
    clean = json.loads((FIXTURES / "smoke_run.json").read_text())
    for entry in clean["benchmarks"]:
        entry["stats"]["data"] = [1e-3] * 5
        entry["extra_info"]["contended"] = False
    path = tmp_path / "clean.json"
    path.write_text(json.dumps(clean))
    proc = run_harness(tmp_path, "--rerun-flagged", str(path))
    assert proc.returncode == USAGE_ERROR, output(proc)
    assert f"--rerun-flagged: {path} has no contended or noisy row to rerun" in output(proc)


def _step_rows(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        b["extra_info"]["backend"]: b["extra_info"]
        for b in run["benchmarks"]
        if b["extra_info"].get("pass") == "step"
    }


def test_a_backend_that_prints_or_whose_memory_child_dies_costs_only_that_memory(
    tmp_path: Path,
) -> None:
    """Issue 24: a print in a backend lost the whole run (its memory child's stdout was read
    as JSON lines), and a child that died or was killed did the same."""
    proc = run_harness(
        tmp_path, "--backends", "fake_chatty,fake_memory_dies", "--sizes", "8",
        env={"FAKE_MEMORY_CHILD": "120"},
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    assert "Traceback" not in proc.stdout + proc.stderr
    (path,) = saved_runs(tmp_path)
    steps = _step_rows(json.loads(path.read_text()))
    # the fake's printed line that looks like a result is not taken for one
    assert steps["fake_chatty"]["peak_extra_bytes"] >= 0
    assert "memory_error" not in steps["fake_chatty"]
    assert steps["fake_memory_dies"]["memory_error"] == "child process killed by signal 9"
    assert "peak_extra_bytes" not in steps["fake_memory_dies"]
    assert "memory of fake_memory_dies not measured: child process killed by signal 9" in (
        proc.stdout
    )
    html = path.with_suffix(".html").read_text()
    assert (
        "<td>fake_memory_dies</td><td>memory not measured</td>"
        "<td>child process killed by signal 9</td>"
    ) in html
    assert proc.stdout.strip().splitlines()[-1] == str(path.with_suffix(".html"))


def test_a_memory_child_that_hangs_is_stopped_and_the_run_saved(tmp_path: Path) -> None:
    proc = run_harness(
        tmp_path, "--backends", "fake_ok,fake_memory_hang", "--sizes", "8",
        env={"FAKE_MEMORY_CHILD": "4"},
    )  # fmt: skip
    assert proc.returncode == 0, output(proc)
    (path,) = saved_runs(tmp_path)
    steps = _step_rows(json.loads(path.read_text()))
    assert steps["fake_memory_hang"]["memory_error"].startswith("child process ran over 4")
    assert steps["fake_ok"]["peak_extra_bytes"] >= 0
    assert "memory not measured" in path.with_suffix(".html").read_text()


def test_rerun_flagged_of_a_run_with_a_crafted_row_is_a_usage_error(tmp_path: Path) -> None:
    """Issue 24: a skipped row with "h": "sixteen" was a pytest INTERNALERROR."""
    crafted = json.loads((FIXTURES / "smoke_run.json").read_text())
    crafted["im2col_bench"]["skipped"][0]["h"] = "sixteen"
    path = tmp_path / "crafted.json"
    path.write_text(json.dumps(crafted))
    proc = run_harness(tmp_path / "reports", "--rerun-flagged", str(path))
    assert proc.returncode == USAGE_ERROR, output(proc)
    text = proc.stdout + proc.stderr
    assert "Traceback" not in text
    assert "INTERNALERROR" not in text
    (error,) = [line for line in text.splitlines() if line.strip()]
    assert error == (
        f"ERROR: --rerun-flagged: {path}: skipped row 1: h 'sixteen' is not an integer in "
        "[1, 2147483648]"
    )


def test_a_report_dir_that_is_a_dangling_link_is_named_for_what_it_is(tmp_path: Path) -> None:
    """Issue 24: a dangling symbolic link said "File exists"."""
    report_dir = tmp_path / "reports"
    report_dir.symlink_to(tmp_path / "gone")
    proc = run_harness(report_dir, "--backends", "fake_ok", "--sizes", "8")
    assert proc.returncode == USAGE_ERROR, output(proc)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line]
    assert errors == [
        f"ERROR: --report-dir {report_dir}: cannot write there (a symbolic link to "
        f"{tmp_path / 'gone'}, which does not exist)"
    ]
