"""Duet mode's foundation: finding an old version, loading it beside this one, naming its twins."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest

import impls
from benchmarks import duet, options
from tests.support import CASES, assert_close, make_inputs, run_backend

ROOT = Path(__file__).resolve().parents[1]
USAGE_ERROR = 4  # pytest.ExitCode.USAGE_ERROR
#: numpy and BLAS only: nothing to compile with numba
NUMPY_BACKENDS = ["batched_im2col", "naive_loop"]


def git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def commit_tree(repo: Path, files: dict[str, str]) -> None:
    """A new git repository at ``repo`` with one commit of ``files``."""
    repo.mkdir()
    git("init", "-q", cwd=repo)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git("add", "-A", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "tree", cwd=repo)


def checkout_copy(where: Path) -> Path:
    """A checkout directory holding a copy of this version's impls/."""
    shutil.copytree(ROOT / "impls", where / "impls", ignore=shutil.ignore_patterns("__pycache__"))
    return where


@pytest.fixture
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """A top-level name of the test's own for an old impls, unloaded after it."""
    name = f"impls_old_{request.node.name.replace('[', '_').replace(']', '_').replace('-', '_')}"
    yield name
    duet._unload(name)


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """HEAD's impls/, extracted and loaded as impls_old_head."""
    root = duet.resolve("HEAD", ROOT, tmp_path_factory.mktemp("duet"))
    yield duet.load_old(root, "impls_old_head")
    duet._unload("impls_old_head")


def test_a_checkout_directory_is_its_own_root(tmp_path: Path) -> None:
    assert duet.resolve(str(ROOT), ROOT, tmp_path / "cache") == ROOT
    assert not (tmp_path / "cache").exists()  # nothing extracted


def test_a_directory_without_impls_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"is not a checkout of this project: it has no impls/"):
        duet.resolve(str(tmp_path), ROOT, tmp_path / "cache")


def test_a_commit_is_extracted_once_by_full_hash(tmp_path: Path) -> None:
    full = git("rev-parse", "HEAD")
    root = duet.resolve("HEAD", ROOT, tmp_path)
    assert root == tmp_path / full
    files = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert files == set(git("ls-tree", "-r", "--name-only", "HEAD", "impls").splitlines())
    assert (root / "impls" / "_base.py").read_text() == git("show", "HEAD:impls/_base.py") + "\n"
    assert [p.name for p in tmp_path.iterdir()] == [full]  # no partial folder left behind
    # a short hash names the same commit, and finds the tree extracted before
    (root / "impls" / "left_by_a_run").write_text("")
    assert duet.resolve(full[:9], ROOT, tmp_path) == root
    assert (root / "impls" / "left_by_a_run").exists()


@pytest.mark.parametrize("spec", ["no-such-branch", "0123456789abcdef0123", "HEAD~100000"])
def test_an_unknown_commit_is_refused_by_name(tmp_path: Path, spec: str) -> None:
    with pytest.raises(ValueError, match=rf"^{spec} is neither a checkout directory nor a commit"):
        duet.resolve(spec, ROOT, tmp_path)
    assert not list(tmp_path.iterdir())


def test_a_commit_needs_a_git_repository(tmp_path: Path) -> None:
    outside = tmp_path / "not_a_repo"
    outside.mkdir()
    if (
        subprocess.run(["git", "-C", str(outside), "rev-parse"], capture_output=True).returncode
        == 0
    ):
        pytest.skip(f"{tmp_path} is inside a git repository")
    with pytest.raises(ValueError, match=r"^HEAD is neither .* a commit of the repository at"):
        duet.resolve("HEAD", outside, tmp_path / "cache")


def test_a_commit_without_impls_is_refused(tmp_path: Path) -> None:
    commit_tree(tmp_path / "repo", {"README.md": "no backends here\n"})
    with pytest.raises(ValueError, match=r"^commit HEAD \([0-9a-f]{12}\) has no impls/ to time"):
        duet.resolve("HEAD", tmp_path / "repo", tmp_path / "cache")


def test_an_absolute_import_of_impls_is_refused(tmp_path: Path) -> None:
    checkout = checkout_copy(tmp_path / "old")
    module = checkout / "impls" / "naive_loop.py"
    module.write_text("from impls._base import Backend\n" + module.read_text())
    with pytest.raises(ValueError, match=r"naive_loop.py:1 imports impls absolutely"):
        duet.resolve(str(checkout), ROOT, tmp_path / "cache")
    with pytest.raises(ValueError, match=r"naive_loop.py:1 imports impls absolutely"):
        duet.load_old(checkout, "impls_old_never_loaded")
    assert "impls_old_never_loaded" not in sys.modules


def test_the_old_twins_compute_what_the_new_backends_do(head: ModuleType) -> None:
    twins = duet.duet_backends(head, NUMPY_BACKENDS)
    assert list(twins) == ["batched_im2col@old", "naive_loop@old"]
    case = CASES[1]  # stride 2, SAME padding, odd sizes
    x, w, b = make_inputs(case, np.float32)
    for name in NUMPY_BACKENDS:
        old, new = twins[duet.twin_name(name)], impls.get_backend(name)
        assert type(old).__module__ == f"impls_old_head.{name}"  # the old code, not this one
        assert (old.name, old.device, old.role) == (f"{name}@old", new.device, new.role)
        for got, expected, what in zip(
            run_backend(old, x, w, b, dy_seed=1, **case.kwargs),
            run_backend(new, x, w, b, dy_seed=1, **case.kwargs),
            ["y", "dx", "dw", "db"],
            strict=True,
        ):
            assert_close(got, expected, np.float32, f"{name}@old {what}")
    assert impls.get_backend("batched_im2col").name == "batched_im2col"  # this one unrenamed


def test_a_twin_runs_the_old_code_and_a_new_backend_has_none(tmp_path: Path, alias: str) -> None:
    checkout = checkout_copy(tmp_path / "old")
    module = checkout / "impls" / "batched_im2col.py"
    module.write_text(module.read_text() + '\nBatchedIm2col.description = "the old one"\n')
    (checkout / "impls" / "mec.py").unlink()
    broken = checkout / "impls" / "naive_loop.py"
    broken.write_text(broken.read_text() + 'raise ImportError("gone")\n')
    names = ["batched_im2col", "mec", "naive_loop"]
    registry = duet.Registry.load(duet.resolve(str(checkout), ROOT, tmp_path), names, alias)
    assert list(registry.twins) == ["batched_im2col@old", "naive_loop@old"]
    assert registry.missing == ("mec",)
    # one the old version cannot import is there, unavailable, with its reason
    unavailable = registry.get_backend("naive_loop@old")
    assert unavailable.name == "naive_loop@old"
    assert unavailable.available() == (False, "import failed: ImportError: gone")
    assert registry.get_backend("batched_im2col@old").description == "the old one"
    assert registry.get_backend("batched_im2col") is impls.get_backend("batched_im2col")
    assert impls.get_backend("batched_im2col").description != "the old one"
    with pytest.raises(ValueError, match=r"^mec@old: mec is not in the old version at .*/old"):
        registry.get_backend("mec@old")


def test_without_a_duet_there_is_no_twin() -> None:
    registry = duet.Registry()
    assert registry.get_backend("naive_loop") is impls.get_backend("naive_loop")
    with pytest.raises(ValueError, match=r"^naive_loop@old: no duet is loaded \(pytest --duet"):
        registry.get_backend("naive_loop@old")
    assert duet.base_name("naive_loop@old") == duet.base_name("naive_loop") == "naive_loop"


def test_an_alias_holds_one_tree(tmp_path: Path, head: ModuleType) -> None:
    root = Path(head.__file__ or "").parents[1]
    assert duet.load_old(root, "impls_old_head") is head
    other = checkout_copy(tmp_path / "other")
    with pytest.raises(ValueError, match=r"^'impls_old_head' is already imported from .*: load"):
        duet.load_old(other, "impls_old_head")


def test_a_numba_twin_caches_beside_its_own_source(head: ModuleType) -> None:
    """numba's cache=True files are kept per source file: the old copy's are its own."""
    if "NUMBA_CACHE_DIR" in os.environ:
        pytest.skip("NUMBA_CACHE_DIR keeps every cache in one folder")
    old = duet.duet_backends(head, ["tiled_im2col"])["tiled_im2col@old"]
    case = CASES[0]
    x, w, b = make_inputs(case, np.float32)
    got = run_backend(old, x, w, b, dy_seed=1, **case.kwargs)
    expected = run_backend(impls.get_backend("tiled_im2col"), x, w, b, dy_seed=1, **case.kwargs)
    for g, e, what in zip(got, expected, ["y", "dx", "dw", "db"], strict=True):
        assert_close(g, e, np.float32, f"tiled_im2col@old {what}")
    caches = Path(head.__file__ or "").parent / "__pycache__"
    assert {p.name.split("-")[0] for p in caches.glob("tiled_im2col.*.nbi")} == {
        "tiled_im2col._gather_plain",
        "tiled_im2col._scatter_plain",
    }


def settings_config(tmp_path: Path, spec: str) -> SimpleNamespace:
    given = {"duet": spec, "memory_limit": None, "report_dir": str(tmp_path), "preset": "smoke"}
    return SimpleNamespace(getoption=lambda name, default=None: given.get(name, default))


def test_duet_option_holds_the_old_root(tmp_path: Path) -> None:
    settings = options.read_settings(settings_config(tmp_path, "HEAD"))  # type: ignore[arg-type]
    assert settings.duet == tmp_path / duet.CACHE_FOLDER / git("rev-parse", "HEAD")
    assert (settings.duet / "impls" / "__init__.py").is_file()


def test_a_bad_duet_is_one_usage_line(tmp_path: Path) -> None:
    with pytest.raises(pytest.UsageError, match=r"^--duet: no-such-commit is neither a checkout"):
        options.read_settings(settings_config(tmp_path, "no-such-commit"))  # type: ignore[arg-type]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "benchmarks.plugin", "--benchmark-only",
         "--preset", "smoke", "--backends", "naive_loop", "--report-dir", str(tmp_path),
         "--duet", str(tmp_path), "-p", "no:cacheprovider", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    text = proc.stdout + proc.stderr
    assert proc.returncode == USAGE_ERROR, text[-3000:]
    assert "Traceback" not in text
    (error,) = [line for line in text.splitlines() if line.strip()]
    assert error == (
        f"ERROR: --duet: {tmp_path} is not a checkout of this project: it has no "
        "impls/__init__.py (name the folder that holds impls/, or a commit)"
    )
