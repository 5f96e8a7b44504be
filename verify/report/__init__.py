"""``verify report``: every paper's claims, their numbers and verdicts, in one Markdown file and one page.

The report is built from the saved results only: it runs every claim of the package the command passes
(:mod:`paper_checks`; each claim reads a file under ``results/``, none reruns an engine), groups them by
paper and kind, and writes

* ``report.md``: the summary table (paper × verdict counts), one section per paper with its claims,
  numbers, verdicts, reasons and figures (linked), the provenance legend and where the results came
  from (commit, clean tree);
* ``report.html``: the same as one standalone page: figures embedded as data URIs, inline CSS, no
  script, nothing fetched.

Both are deterministic functions of the result files (no clock, no host name): the committed report
regenerates byte for byte from the committed results (``verify report --check``).
"""

from __future__ import annotations

from pathlib import Path

from .html import render_html
from .markdown import render_markdown
from .model import Report, build_report

__all__ = ["Report", "build_report", "render_markdown", "render_html", "write_report", "FILES"]

FILES = ("report.md", "report.html")


def rendered(report: Report) -> dict[str, str]:
    return {"report.md": render_markdown(report), "report.html": render_html(report)}


def write_report(out_dir: str | Path, report: Report) -> list[Path]:
    """Write ``report.md`` and ``report.html`` of ``report`` (:func:`build_report`) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in rendered(report).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def stale_files(out_dir: str | Path, report: Report) -> list[str]:
    """The report files in ``out_dir`` that differ from a fresh rendering of ``report`` (missing files included)."""
    stale = []
    for name, text in rendered(report).items():
        path = Path(out_dir) / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(str(path))
    return stale
