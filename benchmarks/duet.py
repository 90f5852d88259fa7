"""Duet mode: the backends of another version of this project, loaded beside this one's.

``pytest --benchmark-only --duet OLD`` answers "did my change make backend X faster?" by
timing X as it is here and as it was in ``OLD`` (a commit, or a checkout directory) in the
same trials, one after the other, so the new/old ratio of each pair cancels what the machine
did meanwhile (duet benchmarking, Bulej et al. 2020). This module finds the old version's
``impls/`` (:func:`resolve`), imports it under another top-level name so both live in one
process (:func:`load_old`), and names its backends ``NAME@old`` (:class:`Registry`).

>>> root = resolve("HEAD~3", repo_root, report_dir / CACHE_FOLDER)  # doctest: +SKIP
>>> registry = Registry.load(root, ["tiled_im2col", "winograd"])  # doctest: +SKIP
>>> registry.get_backend("tiled_im2col@old").name  # doctest: +SKIP
'tiled_im2col@old'

The old backends are imported with their own copies of every module of ``impls/``, so their
module-level state (numba's compiled functions, caches, thread pools, locks) is their own; a
commit's tree is extracted once into ``cache_dir/<full commit hash>/`` (``--duet``: the report
dir's ``.duet/``) and kept, so numba's on-disk caches (``cache=True``, kept beside each source
file, so apart from this version's) survive from run to run there; delete it at any time.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import impls

#: what a backend's name ends with in its old version: tiled_im2col's is tiled_im2col@old
OLD_SUFFIX = "@old"
#: the top-level name the old ``impls`` package is imported under
OLD_ALIAS = "impls_old"
#: the report dir's folder for the commits' extracted impls/, one folder per full hash
CACHE_FOLDER = ".duet"


def twin_name(name: str) -> str:
    """The name of backend ``name``'s old version, e.g. ``tiled_im2col@old``."""
    return f"{name}{OLD_SUFFIX}"


def base_name(name: str) -> str:
    """The backend a name stands for, old or new: ``tiled_im2col`` for ``tiled_im2col@old``."""
    return name.removesuffix(OLD_SUFFIX)


def resolve(spec: str, repo_root: Path, cache_dir: Path) -> Path:
    """The folder that holds the ``impls/`` package of the version ``spec`` names.

    Parameters
    ----------
    spec : str
        A directory (a checkout of this project, with ``impls/__init__.py``), or a commit of
        the repository at ``repo_root`` in any form git takes (``HEAD~2``, a short hash, a tag).
        A directory wins where a name is both.
    repo_root : Path
        Any folder inside the git repository whose commits ``spec`` may name.
    cache_dir : Path
        Where a commit's ``impls/`` is extracted, into ``cache_dir/<full hash>/impls``; a tree
        extracted before is used again, with the numba caches its runs left beside it.

    Returns
    -------
    Path
        The checkout directory, or ``cache_dir/<full hash>``, absolute.

    Raises
    ------
    ValueError
        When ``spec`` is neither a checkout nor a commit of the repository, the commit has no
        ``impls/``, or a module of it imports ``impls`` absolutely (it could not be loaded
        beside this version's).
    """
    path = Path(spec).expanduser()
    if path.is_dir():
        root = path.resolve()
        if not (root / "impls" / "__init__.py").is_file():
            raise ValueError(
                f"{spec} is not a checkout of this project: it has no impls/__init__.py "
                "(name the folder that holds impls/, or a commit)"
            )
    else:
        commit = _commit(spec, repo_root)
        root = (cache_dir / commit).resolve()
        if not (root / "impls" / "__init__.py").is_file():
            _extract(spec, commit, repo_root, root)
    _refuse_absolute_imports(root)
    return root


def load_old(root: Path, alias: str = OLD_ALIAS) -> ModuleType:
    """The ``impls`` package under ``root``, imported as the top-level package ``alias``.

    Its modules import each other relatively (``from ._base import Backend``), so they become
    ``alias._base`` and so on, all apart from this version's ``impls``. Loading the same root
    again gives the module already loaded.

    Parameters
    ----------
    root : Path
        The folder that holds ``impls/``, as :func:`resolve` gives it.
    alias : str
        The top-level name to import it under; no module of that name may be loaded from
        another folder.

    Returns
    -------
    ModuleType
        The old package, with its ``backend_names()`` and ``get_backend(name)``.

    Raises
    ------
    ValueError
        When ``root`` has no ``impls/__init__.py``, a module of it imports ``impls``
        absolutely, ``alias`` is taken, or the package fails to import.
    """
    init = (root / "impls" / "__init__.py").resolve()
    if not init.is_file():
        raise ValueError(f"{root} has no impls/__init__.py: give load_old what resolve() returns")
    loaded = sys.modules.get(alias)
    if loaded is not None:
        if Path(getattr(loaded, "__file__", "") or "").resolve() == init:
            return loaded
        raise ValueError(
            f"{alias!r} is already imported from {getattr(loaded, '__file__', '?')}: "
            f"load {root} under another alias"
        )
    _refuse_absolute_imports(root)
    spec = importlib.util.spec_from_file_location(
        alias, init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:  # never for a .py file
        raise ValueError(f"{init} cannot be imported: Python finds no loader for it")
    module = importlib.util.module_from_spec(spec)
    sys.modules[alias] = module  # its relative imports look the package up here
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        _unload(alias)
        raise ValueError(
            f"the impls/ of {root} cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    lacking = [f for f in ("backend_names", "get_backend") if not hasattr(module, f)]
    if lacking:
        _unload(alias)
        raise ValueError(f"the impls/ of {root} has no {' or '.join(lacking)}: too old for a duet")
    return module


def _unload(alias: str) -> None:
    """Forget the package ``alias`` and its modules, so a later load starts afresh."""
    for name in [n for n in sys.modules if n == alias or n.startswith(f"{alias}.")]:
        del sys.modules[name]


def duet_backends(old_module: ModuleType, names: Iterable[str]) -> dict[str, impls.Backend]:
    """The old versions of the backends ``names`` that the old package has, by twin name.

    Each is the old package's own ``get_backend(name)``, so its ``device``, ``role`` and the
    rest are the old code's; only its ``name`` reads ``NAME@old`` (the old package's cached
    instance is renamed, so asking again gives the same twin). A twin is an instance of the old
    package's ``Backend``, with its interface, not of this version's: never test it with
    ``isinstance(b, impls.Backend)``. A name the old package does not have gets no twin (see
    :attr:`Registry.missing`); one it cannot import is its ``UnavailableBackend``, renamed.

    Parameters
    ----------
    old_module : ModuleType
        The old package, from :func:`load_old`.
    names : iterable of str
        Backend names of this version.

    Returns
    -------
    dict of str to Backend
        ``{"tiled_im2col@old": <the old tiled_im2col>, ...}``, in the order of ``names``.
    """
    known = set(old_module.backend_names())
    twins: dict[str, impls.Backend] = {}
    for name in names:
        if name in known:
            twins[twin_name(name)] = _renamed(old_module, name)
    return twins


@dataclass(frozen=True)
class Registry:
    """Backends by name: this version's, and with a duet, the old twins as ``NAME@old``.

    ``Registry()`` has no duet: it gives this version's backends only.
    """

    #: the folder that holds the old impls/, or None without a duet
    old_root: Path | None = None
    #: the old twins, by twin name
    twins: Mapping[str, impls.Backend] = field(default_factory=dict)
    #: the backends asked for that the old version does not have (only in this one)
    missing: tuple[str, ...] = ()

    @classmethod
    def load(cls, root: Path, names: Iterable[str], alias: str = OLD_ALIAS) -> Registry:
        """A registry with the old twins of ``names`` from the ``impls/`` under ``root``.

        Raises
        ------
        ValueError
            As :func:`load_old` does.
        """
        names = list(names)
        twins = duet_backends(load_old(root, alias), names)
        missing = tuple(n for n in names if twin_name(n) not in twins)
        return cls(old_root=root, twins=twins, missing=missing)

    def get_backend(self, name: str) -> impls.Backend:
        """The backend ``name``: ``impls.get_backend(name)``, or an old twin for ``NAME@old``.

        Raises
        ------
        ValueError
            For an unknown backend, or a twin name this registry has no twin for.
        """
        if not name.endswith(OLD_SUFFIX):
            return impls.get_backend(name)
        if name in self.twins:
            return self.twins[name]
        if self.old_root is None:
            raise ValueError(f"{name}: no duet is loaded (pytest --duet OLD_COMMIT_OR_DIR)")
        raise ValueError(
            f"{name}: {base_name(name)} is not in the old version at {self.old_root} "
            f"(old twins: {', '.join(self.twins) or 'none'})"
        )


def _renamed(old_module: ModuleType, name: str) -> Any:
    """The old package's backend ``name``, named as its twin."""
    backend = old_module.get_backend(name)
    unavailable = getattr(old_module, "UnavailableBackend", None)
    if unavailable is not None and isinstance(backend, unavailable):
        # its name is a read-only property
        return unavailable(twin_name(name), backend.available()[1])
    backend.name = twin_name(name)  # shadows the class's name for this instance only
    _adapt(backend)
    return backend


def _adapt(backend: Any) -> None:
    """Give an old backend the ``untimed_reason`` check its version may lack."""
    if not hasattr(backend, "untimed_reason"):
        backend.untimed_reason = types.MethodType(impls.Backend.untimed_reason, backend)


def declined(backend: Any, geom: impls.ConvGeometry, dtype: Any) -> str | None:
    """Why ``backend`` declines a configuration, or None: ``supports(geom, dtype)``, or for
    a backend of an older version, the raw arguments it took then
    (``supports(x_shape, w_shape, stride=, padding=, dtype=)``)."""
    if "x_shape" in inspect.signature(backend.supports).parameters:
        return backend.supports(  # type: ignore[no-any-return]
            geom.x_shape, geom.w_shape, stride=geom.stride, padding=geom.pad, dtype=dtype
        )
    return backend.supports(geom, dtype)  # type: ignore[no-any-return]


def _commit(spec: str, repo_root: Path) -> str:
    """The full hash of the commit ``spec`` names in the repository at ``repo_root``."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo_root), "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError as exc:
        raise ValueError(f"{spec} is not a directory, and git cannot run here ({exc})") from None
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[-1:] or ["no such commit"]
        raise ValueError(
            f"{spec} is neither a checkout directory nor a commit of the repository at "
            f"{repo_root} ({why[0]}): name a folder that holds impls/, or a commit such as HEAD~1"
        )
    return done.stdout.strip()


def _extract(spec: str, commit: str, repo_root: Path, root: Path) -> None:
    """Write commit's ``impls/`` to ``root/impls``, whole or not at all."""
    # from the repository's top folder: in a subfolder, git archives only what lies under it
    top = subprocess.run(
        ["git", "-C", str(repo_root), "rev-parse", "--show-toplevel"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    done = subprocess.run(
        ["git", "-C", top or str(repo_root), "archive", "--format=tar", commit, "impls"],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["git failed"]
        raise ValueError(f"commit {spec} ({commit[:12]}) has no impls/ to time: {why[0]}")
    root.parent.mkdir(parents=True, exist_ok=True)
    # into a fresh folder beside root, renamed at the end: a run stopped half-way, or another
    # run extracting the same commit at the same time, never leaves a partial tree at root
    partial = Path(tempfile.mkdtemp(prefix=f".{commit}-", dir=root.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(partial, filter="data")
            else:  # Python < 3.10.12: git's own archive of impls/, nothing outside it
                archive.extractall(partial)
        try:
            os.rename(partial, root)
        except OSError:
            if not (root / "impls" / "__init__.py").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def _refuse_absolute_imports(root: Path) -> None:
    """ValueError naming the first module under ``root/impls`` that imports ``impls`` itself.

    Such a module would import this version's ``impls`` into the old one.
    """
    for path in sorted((root / "impls").rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (SyntaxError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} cannot be read as Python: {exc}") from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            if any(m == "impls" or m.startswith("impls.") for m in modules):
                raise ValueError(
                    f"{path}:{node.lineno} imports impls absolutely, so it would run this "
                    "version's code in the old one: make that import relative (from . import "
                    "...) in the old version, or give --duet a commit without it"
                )


#: the registry of the run in this process: this version's backends only until the harness
#: loads a duet (a process holds one run's harness)
_ACTIVE = [Registry()]


def activate(registry: Registry) -> None:
    """Make ``registry`` the one :func:`get_backend` answers from, for this process's run."""
    _ACTIVE[0] = registry


def get_backend(name: str) -> impls.Backend:
    """The backend ``name`` of the run: this version's, or an old twin (``NAME@old``).

    Raises
    ------
    ValueError
        As :meth:`Registry.get_backend`.
    """
    return _ACTIVE[0].get_backend(name)


def twins_of(names: Iterable[str]) -> list[str]:
    """The twin names of ``names`` the run's duet has, in their order; [] without a duet."""
    return [twin_name(n) for n in names if twin_name(n) in _ACTIVE[0].twins]


def missing() -> tuple[str, ...]:
    """The backends the run's duet has no old version of; () without a duet."""
    return _ACTIVE[0].missing


def for_run(root: Path | None, names: Iterable[str]) -> Registry:
    """The run's registry, made the one :func:`get_backend` answers from: the old twins of
    ``names`` under ``root`` (``--duet``), or this version's backends only (None).

    Raises
    ------
    pytest.UsageError
        Of one line, where the old version cannot be loaded.
    """
    import pytest

    registry = Registry()
    if root is not None:
        try:
            registry = Registry.load(root, names)
        except ValueError as exc:
            raise pytest.UsageError(f"--duet: {exc}") from None
    activate(registry)
    return registry
