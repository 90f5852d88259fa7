"""The timing protocol (blocks, settling, untimed calls), contention and budget estimates.

No test here looks at how long anything took: they check what the protocol calls and when,
and the rules that turn measured CPU use into a flag.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

from benchmarks import timing
from benchmarks.machine import CONTENDED_CORES, CpuSample, CpuUse, usable_cpus
from benchmarks.matrix import PRESETS, Case, Conv, sweep_conv
from benchmarks.timing import WARM_S, Blocks, Estimates, block_sizes, settle


@pytest.mark.parametrize(
    ("rounds", "sizes"),
    [(1, [1]), (3, [3]), (5, [5]), (9, [9]), (10, [5, 5]), (15, [5, 5, 5]), (50, [17, 17, 16])],
)
def test_rounds_are_split_into_at_most_three_blocks_of_five_or_more(
    rounds: int, sizes: list[int]
) -> None:
    assert block_sizes(rounds) == sizes


def slow_call() -> None:
    """A call longer than the protocol's warm-up, so one untimed call opens a block."""
    time.sleep(WARM_S * 1.5)


def test_each_block_opens_with_untimed_calls() -> None:
    calls: list[str] = []

    def call() -> None:
        slow_call()
        calls.append("untimed")

    blocks = Blocks(call, None, rounds=15)
    for _ in range(blocks.rounds):
        # pytest-benchmark calls the setup before each timed round, then times the target
        assert blocks.setup() is None
        calls.append("timed")
    assert calls == (["untimed"] + ["timed"] * 5) * 3
    assert blocks.info()["blocks"] == [5, 5, 5]
    assert blocks.info()["untimed_calls"] == 3


def test_untimed_calls_just_made_open_the_first_block() -> None:
    calls: list[str] = []

    def call() -> None:
        slow_call()
        calls.append("untimed")

    blocks = Blocks(call, None, rounds=10, warmed_s=WARM_S)
    for _ in range(blocks.rounds):
        blocks.setup()
        calls.append("timed")
    assert calls == ["timed"] * 5 + ["untimed"] + ["timed"] * 5


def test_a_short_call_is_repeated_until_the_block_is_warm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: clock.now))

    def call() -> None:  # each call takes a fifth of the warm-up, on the fake clock
        clock.now += WARM_S / 5

    blocks = Blocks(call, None, rounds=5)
    blocks.warm_up(WARM_S)
    assert blocks.untimed_calls == 5


def test_a_backward_block_gets_a_fresh_context_for_its_untimed_call_and_each_round() -> None:
    contexts = iter(range(100))
    used: list[int] = []

    def backward(context: int) -> None:
        slow_call()
        used.append(context)

    def fresh() -> tuple[tuple[int], dict[str, int]]:
        return (next(contexts),), {}

    blocks = Blocks(backward, fresh, rounds=5)
    given = [blocks.setup() for _ in range(blocks.rounds)]
    assert used == [0]  # the untimed call
    assert given == [((n,), {}) for n in range(1, 6)]  # a new context for every round


def test_settle_waits_until_this_processs_threads_stop_spinning() -> None:
    stopped = threading.Event()

    def spin() -> None:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
        stopped.set()

    spinner = threading.Thread(target=spin)
    spinner.start()
    settle(max_s=30)
    assert stopped.is_set()
    spinner.join()


def test_the_cpu_use_between_two_samples_counts_this_process() -> None:
    before = CpuSample.now()
    end = time.process_time() + 0.05
    while time.process_time() < end:
        pass
    use = CpuUse.between(before, CpuSample.now())
    assert use.own_cpu_s >= 0.05
    assert use.others_cpu_s >= 0
    assert use.cores >= 1


@pytest.mark.parametrize(
    ("cores", "threads", "others", "contended"),
    [
        (2, 2, 0.0, False),
        (2, 2, CONTENDED_CORES + 0.05, True),  # any core taken from two threads on two cores
        (2, 1, 1.0, False),  # one thread on two cores leaves a core to the others
        (2, 1, 1 + CONTENDED_CORES + 0.05, True),
        (8, 2, 5.0, False),
    ],
)
def test_a_benchmark_is_contended_when_others_take_the_cores_its_threads_need(
    cores: int, threads: int, others: float, contended: bool
) -> None:
    use = CpuUse(1.0, 2.0, others, 0.0, 0.0, cores)
    assert use.contended(threads) is contended
    assert use.info(threads)["contended"] is contended


def test_a_budget_estimate_comes_from_the_fastest_round_and_says_so() -> None:
    estimates = Estimates(PRESETS["default"])
    estimates.add(Case("x", "forward", sweep_conv(16)), 0.01)
    estimate = estimates.estimate(Case("x", "forward", sweep_conv(32)))
    assert estimate is not None
    assert estimate.seconds == pytest.approx(0.04)  # 4x the pixels, exponent 1 from one size
    assert estimate.describe() == (
        "estimated 0.04 s per call, scaled from its fastest round at default-16px (0.01 s)"
    )


def test_an_estimate_across_configurations_scales_by_pixels_or_flops() -> None:
    estimates = Estimates(PRESETS["default"])
    estimates.add(Case("x", "forward", sweep_conv(64)), 0.1)
    k5 = Conv("k5", n=8, size=64, c_in=32, c_out=32, k=5)
    estimate = estimates.estimate(Case("x", "forward", k5))
    assert estimate is not None
    assert estimate.seconds == pytest.approx(0.1 * 25 / 9)  # 5x5 taps against 3x3
    assert estimate.source == sweep_conv(64)


def busy_loop() -> None:
    """A short compute-bound call: this process's threads use one core while it runs."""
    end = time.process_time() + 0.002
    while time.process_time() < end:
        pass


def test_busy_processes_beside_the_rounds_are_seen_as_contention() -> None:
    """The detector on real processes: one busy loop per usable core runs beside 15 rounds
    of a short timed loop, and the blocks' CPU use calls them contended. Nothing is timed:
    only the CPU that other processes took is looked at."""
    cores = len(usable_cpus())
    code = "import time\nend = time.time() + 30\nwhile time.time() < end:\n    pass\n"
    spinners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(cores)]
    try:
        time.sleep(0.2)  # the spinners are running
        blocks = Blocks(busy_loop, None, rounds=15)
        for _ in range(blocks.rounds):
            blocks.setup()
            busy_loop()
        use = blocks.cpu_use()
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert use.others_cores > CONTENDED_CORES
    assert use.contended(threads=cores)
    assert use.info(cores)["contended"] is True
