"""Backends are found by file name, and a broken one is listed rather than fatal."""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import impls

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ["naive_loop", "batched_im2col", "strided_tensordot", "numba_loop", "numba_cuda"]


def test_every_seed_backend_is_discovered() -> None:
    names = impls.backend_names()
    assert set(SEEDS) | {"reference"} <= set(names)
    assert names == sorted(names)
    assert not any(name.startswith("_") for name in names)


def test_unknown_backend_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"Unknown backend 'nope'; known backends: .*naive_loop"):
        impls.get_backend("nope")


def test_a_module_that_fails_to_import_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def broken_import(name: str, package: str | None = None) -> ModuleType:
        if name == "impls.naive_loop":
            raise ImportError("no module named 'fancy_dependency'")
        return real_import(name, package)

    monkeypatch.setattr(importlib, "import_module", broken_import)
    backend = impls.get_backend.__wrapped__("naive_loop")
    ok, reason = backend.available()
    assert not ok
    assert backend.name == "naive_loop"
    assert "fancy_dependency" in reason


def test_copying_the_template_is_all_it_takes(tmp_path: Path) -> None:
    """README's "Adding a backend": copy, rename, and the suite's per-backend tests pick it up."""
    target = ROOT / "impls" / "zz_template_copy.py"
    shutil.copy(ROOT / "impls" / "_template.py", target)
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "tests/test_conformance.py",
                "tests/test_validation.py",
                "tests/test_threads.py",
                "tests/test_inplace.py",
                "tests/test_nonfinite.py",
                "-k",
                "zz_template_copy",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        target.unlink()
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout
    assert "failed" not in result.stdout


def test_the_readme_backend_table_is_true() -> None:
    """Each backend row of the README names a real backend, its role and its description."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (.+) \|$", readme, flags=re.MULTILINE)
    assert {"reference", *SEEDS} <= {name for name, _, _ in rows}
    for name, role, description in rows:
        backend = impls.get_backend(name)
        assert (role, description) == (backend.role, backend.description), name


def promises(backend: impls.Backend) -> tuple[str, ...]:
    """The backend's row of the README's table of promises, from what it declares."""
    kept = {name: name in backend.saved_by_reference for name in ("x", "w")}
    if kept["x"] == kept["w"]:
        inputs = "x, w fingerprinted" if kept["x"] else "x, w copied"
    else:
        inputs = ", ".join(f"{n} {'fingerprinted' if kept[n] else 'copied'}" for n in kept)
    spread = backend.nonfinite_spread
    return inputs, spread["y"], spread["dx"], spread["dw"]


def test_the_readme_table_of_promises_is_true() -> None:
    """One row per backend of the backend table, each as the backend declares it."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    backends = re.findall(
        r"^\| `(\w+)` \| (?:oracle|seed|ours|peer) \|", readme, flags=re.MULTILINE
    )
    rows = re.findall(
        r"^\| `(\w+)` \| (x[^|]*) \| (\w+) \| (\w+) \| (\w+) \|$", readme, flags=re.MULTILINE
    )
    assert sorted(name for name, *_ in rows) == sorted(backends)
    for name, *row in rows:
        assert tuple(row) == promises(impls.get_backend(name)), name
