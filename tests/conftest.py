"""Test set-up: the CUDA simulator where no GPU is present, parametrization over backends, and
hypothesis's profile."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import impls
from tests.support import CASES, DTYPES

try:
    import hypothesis
except ImportError:  # the property tests skip themselves
    hypothesis = None

if hypothesis is not None:
    # the same draws on every run, so a catch is never luck (CI and by default);
    # HYPOTHESIS_PROFILE=explore draws afresh each run and keeps failures in .hypothesis/
    hypothesis.settings.register_profile("derandomized", derandomize=True, database=None)
    hypothesis.settings.register_profile("explore", derandomize=False)
    hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "derandomized"))


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    # without an NVIDIA driver, test numba_cuda on numba's CUDA simulator (never when timing);
    # this must happen before numba.cuda is first imported
    if (
        "NUMBA_ENABLE_CUDASIM" not in os.environ
        and not config.getoption("benchmark_only", False)
        and not (shutil.which("nvidia-smi") or Path("/dev/nvidia0").exists())
    ):
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"


def _explicitly_parametrized(metafunc: pytest.Metafunc) -> set[str]:
    names: set[str] = set()
    for mark in metafunc.definition.iter_markers("parametrize"):
        argnames = mark.args[0]
        if isinstance(argnames, str):
            argnames = argnames.replace(" ", "").split(",")
        names.update(argnames)
    return names


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # every module in impls/ is tested, with no list to edit
    defaults = {
        "backend_name": ([n for n in impls.backend_names() if n != "reference"], None),
        "grid_case": (CASES, [c.id for c in CASES]),
        "dtype": (DTYPES, ["float32", "float64"]),
    }
    explicit = _explicitly_parametrized(metafunc)
    for argname, (values, ids) in defaults.items():
        if argname in metafunc.fixturenames and argname not in explicit:
            metafunc.parametrize(argname, values, ids=ids)
