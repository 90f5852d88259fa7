"""The index of a report directory: a page linking every saved run, newest first, with what
tells the runs apart.

Each run's entry is computed once and kept in a cache beside the runs (``runs/.index-cache``,
JSON), keyed by the run file's size and modification time, so saving a run reads no other run
again: only a run the cache does not know, or that changed since, is read.
"""

from __future__ import annotations

import json
import os
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from .data import BASELINE, ReportInputError, headline, load, load_runs, read_run
from .html import CSS
from .report import Report, timed_backends
from .storage import INDEX, RUNS, index_lock, reported_runs, write_atomic

#: the cache of index entries, in a report directory's runs folder (hidden, and not named
#: ``*.json``: it is no run)
CACHE = f"{RUNS}/.index-cache"
#: the cache's layout and what an entry holds: bump it when either changes (an entry made
#: by other code is then made again, not shown)
CACHE_VERSION = 1

#: each field of an entry the index shows, with its column's title
INDEX_FIELDS = (
    ("when", "run"),
    ("machine", "machine"),
    ("cpu", "CPU"),
    ("vector", "vector extensions"),
    ("blas", "BLAS"),
    ("cores", "cores and threads"),
    ("preset", "preset"),
    ("duration", "duration"),
    ("backends", "backends timed"),
    ("interrupted", "state"),
    ("headline", "headline"),
)


def _index_cell(entry: dict[str, str], key: str) -> str:
    text = escape(entry.get(key, ""))
    if key == "when":
        return f"<td class='when'><a href='{escape(entry['href'])}'>{text}</a></td>"
    if key == "backends":
        return f"<td title='{escape(entry.get('backend_names', ''))}'>{text}</td>"
    warn = " notmet" if entry.get(key) == "interrupted" else ""
    return f"<td class='{key}{warn}'>{text}</td>"


def render_index(entries: list[dict[str, str]]) -> str:
    """A page linking every saved run, newest first, with what tells the runs apart."""
    head = "".join(f"<th>{escape(label)}</th>" for _, label in INDEX_FIELDS)
    rows = "".join(
        "<tr>" + "".join(_index_cell(e, key) for key, _ in INDEX_FIELDS) + "</tr>" for e in entries
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>im2col-bench runs</title>
<style>{CSS}</style></head><body><h1>im2col-bench runs (newest first)</h1>
<table id='index'><tr>{head}</tr>{rows}</table>
</body></html>
"""


def headline_text(rows: pd.DataFrame) -> str:
    """The headline (:func:`reports.data.headline`) in one line: per pass, the fastest
    contender and its speedup."""
    if rows.empty:
        return "no contender timed on the default sweep"
    parts = [
        f"{r['pass']} {r['backend']} "
        + ("" if pd.isna(r["speedup"]) else f"{r['speedup']:.3g}x ")
        + f"at {r['size']}px"
        for _, r in rows.iterrows()
    ]
    return "; ".join(parts) + f" (speedup over {BASELINE})"


def index_entry(path: Path, report: Report | None = None) -> dict[str, str]:
    """The index's entry of the run in ``path``: its link, date and everything
    :data:`INDEX_FIELDS` shows; from ``report`` (of that run alone) where given, else from the
    file, read once (the goals and the article are not needed)."""
    if report is None:
        read = read_run(path)
        frame, runs = load([read]), load_runs([read])
        rows = headline(frame)
    else:
        frame, runs, rows = report.frame, report.runs, report.headline
    run = runs.iloc[0]
    count, names = timed_backends(frame, str(run["run"]))
    return {
        **run["described"],
        "href": f"runs/{path.with_suffix('.html').name}",
        "when": str(run["datetime"] or "")[:16].replace("T", " "),
        "backends": count,
        "backend_names": names,
        "headline": headline_text(rows),
    }


def _stamp(path: Path) -> list[int]:
    """What tells whether a run file changed since its entry was cached."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _read_cache(report_dir: Path) -> dict[str, Any]:
    """The cached entries by run file name; empty where there is no usable cache."""
    try:
        cache = json.loads((report_dir / CACHE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not (isinstance(cache, dict) and cache.get("version") == CACHE_VERSION):
        return {}
    runs = cache.get("runs")
    return runs if isinstance(runs, dict) else {}


def index_entries(report_dir: Path, known: Report | None = None) -> list[dict[str, str]]:
    """Every run in ``report_dir/runs`` that has a report, newest first; a run that cannot be
    read is left out.

    Each entry comes from the cache where the run file has not changed since, from ``known``
    (a report of one run of the directory, already loaded) for its run, and otherwise from
    reading the run; the cache is then rewritten where it changed.
    """
    cached = _read_cache(report_dir)
    fresh: dict[Path, Report] = {}
    if known is not None and len(known.paths) == 1 and known.paths[0] is not None:
        fresh[Path(os.path.realpath(known.paths[0]))] = known
    entries, cache = [], {}
    for path in reported_runs(report_dir):
        try:
            stamp = _stamp(path)
        except OSError:
            continue
        hit = cached.get(path.name)
        if isinstance(hit, dict) and hit.get("stamp") == stamp:
            entry = hit.get("entry")
        else:
            try:
                entry = index_entry(path, fresh.get(Path(os.path.realpath(path))))
            except (OSError, ValueError, KeyError, TypeError, ReportInputError):
                entry = None  # cached too: an unreadable run is not read again on every save
        cache[path.name] = {"stamp": stamp, "entry": entry}
        if isinstance(entry, dict):
            entries.append(entry)
    if cache != cached:
        try:
            text = json.dumps({"version": CACHE_VERSION, "runs": cache}, indent=0)
            write_atomic(report_dir / CACHE, text)
        except OSError:
            pass  # the index is still right; the next save reads the runs again
    return sorted(entries, key=lambda e: (e["when"], e["href"]), reverse=True)


def update_index(report_dir: str | Path, known: Report | None = None) -> Path:
    """Rewrite ``report_dir/index.html`` listing every saved run, newest first.

    ``known``: the report of a run just saved in ``report_dir``
    (:func:`reports.report.load_report` of its file), whose entry is then taken from it
    rather than read again.
    """
    report_dir = Path(report_dir)
    with index_lock(report_dir):
        return write_atomic(report_dir / INDEX, render_index(index_entries(report_dir, known)))
