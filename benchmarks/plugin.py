"""The pytest plugin: the harness's options, and the :class:`Harness` it registers for each run.

Installed, the package registers this module through its ``pytest11`` entry point, so the
options exist before pytest reads the command line. In a checkout that is not installed,
``python -m pytest -p benchmarks.plugin ...`` loads the same module (the root conftest.py
loads it too, too late only for ``--report-dir DIR`` written with a space).
"""

from __future__ import annotations

import pytest

from .harness import Harness
from .matrix import PRESETS
from .options import read_settings

HARNESS = pytest.StashKey[Harness]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("im2col-bench", "im2col-bench benchmark matrix")
    group.addoption(
        "--preset",
        help=f"{' | '.join(PRESETS)}: smoke (<1 min), default (<10 min, what --benchmark-only "
        "runs), full, resnet50 (ResNet-50's distinct layers, ours and the libraries, <10 min), "
        "or gpu (ResNet-50 layers at batch 128 and a batch sweep, GPU backends only, <10 min "
        "on one H100/H200; what --benchmark-only runs where a GPU backend has a GPU)",
    )
    group.addoption("--backends", help="comma-separated backends to time (default: all)")
    group.addoption("--sizes", help="comma-separated image sizes of the default sweep")
    group.addoption("--threads", help="threads for BLAS, numba and torch (default: all cores)")
    group.addoption(
        "--report-dir", help="where runs, reports and index.html are saved (default: reports/)"
    )
    group.addoption(
        "--rerun-flagged",
        metavar="RUN.json",
        help="time again only the contended or noisy rows of a saved run (with its preset, "
        "backends, sizes and threads) and save a new run with those rows replaced",
    )
    group.addoption(
        "--trials",
        help="how many times each case is timed, each time in a random order of the matrix "
        "(default 3); a case's interval comes from the variation between its trials",
    )
    group.addoption(
        "--seed", help="seed of the trials' random orders (default: a random one, in the JSON)"
    )
    group.addoption(
        "--memory-limit",
        help="largest share of the available memory one configuration may need (default 50%%); "
        "a bigger one is skipped with its estimate",
    )
    group.addoption(
        "--duet",
        metavar="OLD_COMMIT_OR_DIR",
        help="time the backends of another version of this project (a commit or a checkout "
        "directory) interleaved with this one's, in the same trials, and report new/old ratios",
    )


def pytest_configure(config: pytest.Config) -> None:
    # pytest-benchmark's own table is hundreds of lines, 260 columns wide: the harness prints
    # a summary instead (--benchmark-verbose brings the table back, as its docs say)
    config.option.benchmark_quiet = True
    harness = Harness(config, read_settings(config))
    config.stash[HARNESS] = harness
    config.pluginmanager.register(harness, "im2col-bench")
    config.pluginmanager.register(harness.schedule, "im2col-bench-schedule")


@pytest.fixture(scope="session")
def harness(pytestconfig: pytest.Config) -> Harness:
    """The run's harness, started at the first benchmark."""
    harness = pytestconfig.stash[HARNESS]
    harness.start()
    return harness
