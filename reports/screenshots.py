"""Screenshots of a run's report, of a merged report and of the index, taken in headless Chromium.

    python -m reports.screenshots RUN.json OTHER.json [...] [-o reports/screenshots]

The report of RUN.json, the report of all the runs side by side and an index listing them
are built in a temporary folder, cut at their headings, and each part is shot at 1280 pixels
wide: ``default-NN-<section>.png``, ``merged-NN-<section>.png`` and ``index.png``. Exit
status 2, with one line, when Chromium or a run is missing.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from html import unescape
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np

from . import build_report, update_index
from .data import ReportInputError

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
#: the flags the project's screenshots are taken with: nothing loaded from the network
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--hide-scrollbars",
)
WIDTH = 1280
#: the sections of the merged report worth a picture; of the single run's, all but the
#: collapsed software versions
MERGED_SECTIONS = ("runs", "the-article-s-claims-checked", "speedup-over-naive_loop",
                   "peak-memory-against-the-im2col-buffer", "results")  # fmt: skip
SKIPPED_SECTIONS = ("machines",)


def sections(html: str) -> list[tuple[str, str]]:
    """The page cut before each ``<h2>``, as (slug, page): every part keeps the page's style."""
    head, body = html.split("<body>", 1)
    body = body.replace("</body></html>", "")
    parts = body.split("<h2>")
    pages = [("runs", parts[0])]
    for part in parts[1:]:
        heading = unescape(re.sub(r"<[^>]+>", "", part.split("</h2>", 1)[0]))
        slug = re.sub(r"[^a-z0-9_]+", "-", heading.lower()).strip("-")
        pages.append((slug, "<h2>" + part))
    return [(slug, f"{head}<body>{part}</body></html>") for slug, part in pages]


def shoot(browser: str, page: Path, png: Path) -> None:
    """A screenshot of ``page``, 1280 pixels wide, cut below its last line of content."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},9000",
             f"--screenshot={png}", page.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    image = mpimg.imread(png)[:, :, :3]
    inked = np.nonzero((image < 0.98).any(axis=(1, 2)))[0]
    bottom = int(inked.max()) + 24 if inked.size else image.shape[0]
    mpimg.imsave(png, image[:bottom])


def shoot_report(
    browser: str, html: Path, out: Path, prefix: str, keep: Sequence[str] = ()
) -> list[Path]:
    """A PNG per section of a report (those in ``keep``, or all)."""
    shots = []
    for number, (slug, page) in enumerate(sections(html.read_text(encoding="utf-8")), 1):
        if (keep and slug not in keep) or slug in SKIPPED_SECTIONS:
            continue
        part = html.with_name(f"{prefix}-{slug}.html")
        part.write_text(page, encoding="utf-8")
        png = out / f"{prefix}-{number:02d}-{slug}.png"
        shoot(browser, part, png)
        shots.append(png)
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.screenshots", description=__doc__)
    parser.add_argument("runs", nargs="+", help="the run to show first, then the others")
    parser.add_argument("-o", "--output", default="reports/screenshots", help="the PNGs' folder")
    args = parser.parse_args(argv)
    browser = next((b for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        print("python -m reports.screenshots: error: needs Chromium (apt-get install chromium)",
              file=sys.stderr)  # fmt: skip
        return 2
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        try:
            build_report(args.runs[:1], work / "default.html")
            build_report(args.runs, work / "merged.html")
        except (ReportInputError, OSError) as exc:
            print(f"python -m reports.screenshots: error: {exc}", file=sys.stderr)
            return 2
        shots = shoot_report(browser, work / "default.html", out, "default")
        shots += shoot_report(browser, work / "merged.html", out, "merged", MERGED_SECTIONS)
        (work / "runs").mkdir()
        for number, run in enumerate(args.runs):
            shutil.copy(run, work / "runs" / f"run{number}.json")
            (work / "runs" / f"run{number}.html").write_text("<p>report</p>")
        shoot(browser, update_index(work), out / "index.png")
        shots.append(out / "index.png")
    for shot in shots:
        print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
