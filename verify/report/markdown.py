"""The report as Markdown (``results/report/report.md``; figures linked relative to the report)."""

from __future__ import annotations

from typing import Any

from verify.verdicts import tag_table_markdown

from .model import COUNT_COLUMNS, KIND_TITLES, Report, Section, verdict_counts
from .text import HOW_TO_READ, REGENERATE, TITLE, VERDICT_MEANING, split_numbers, value_text

__all__ = ["render_markdown"]


def _cell(text: Any) -> str:
    return value_text(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip() or "—"


def _summary(report: Report) -> list[str]:
    head = ["paper", "claims", *(f"{v}" if g == "asserted" else f"reported {v}" for g, v in COUNT_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in report.sections:
        counts = verdict_counts(s.rows)
        lines.append(f"| [{_cell(s.paper)}](#{s.anchor}) | {len(s.rows)} | " + " | ".join(map(str, counts)) + " |")
    total = verdict_counts(report.rows)
    lines.append(f"| **all** | **{len(report.rows)}** | " + " | ".join(f"**{n}**" for n in total) + " |")
    return lines


def _sources(report: Report) -> list[str]:
    lines = ["| results | files | commit | clean tree | detail |", "|---|---|---|---|---|"]
    for src in report.sources:
        commit = f"`{src.commit[:12]}`" if src.commit else "not recorded"
        clean = {True: "yes", False: "**no**", None: "unknown"}[src.clean]
        lines.append(f"| {_cell(src.name)} | `results/{src.path}` | {commit} | {clean} | {_cell(src.detail)} |")
    return lines


def _verdict(row: dict[str, Any]) -> str:
    return f"**{row['verdict']}**" if row["asserted"] else row["verdict"]


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| claim | where | tag | claimed | measured | verdict | reason |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        claimed, measured, _ = split_numbers(r.get("numbers") or {})
        lines.append(f"| {_cell(r['statement'])} <br>`{r['key']}` | {_cell(r['where'])} | {r['provenance']} | "
                     f"{_cell(claimed)} | {_cell(measured)} | {_verdict(r)} | {_cell(r['reason'])} |")
    return lines


def _section(s: Section, figure_prefix: str, root) -> list[str]:
    counts = verdict_counts(s.rows)
    summary = ", ".join(f"{n} {v if g == 'asserted' else v.lower()}" for (g, v), n in zip(COUNT_COLUMNS, counts) if n)
    lines = [f'<a id="{s.anchor}"></a>', "", f"## {s.paper}", ""]
    if s.intro:
        lines += [s.intro, ""]
    lines += [f"{len(s.rows)} claims: {summary} (asserted verdicts in capitals and bold).", ""]
    for kind, title in KIND_TITLES.items():
        rows = s.rows_of(kind)
        if rows:
            lines += [f"### {title}", "", *_rows(rows), ""]
    if s.figures:
        lines += ["### Figures", ""]
        for fig in s.figures:
            exists = (root / fig).is_file()
            lines.append(f"![{fig}]({figure_prefix}{fig})" if exists else f"*figure missing: results/{fig}*")
            lines.append("")
    return lines


def render_markdown(report: Report, figure_prefix: str = "../") -> str:
    """The whole report; figures are linked as ``figure_prefix + <path under results/>``."""
    lines = [f"# {TITLE}", "", HOW_TO_READ, "", f"Regenerate: `{REGENERATE}`.", "", "## Summary", "",
             *_summary(report), "",
             "Columns: asserted verdicts (PASS, FAIL, INCONCLUSIVE, ERROR), then reported ones. A paper's asserted "
             "FAIL is a measured disagreement with a claim its provenance lets us test; the reason says what "
             "differs.", "",
             "## Where the results came from", "", *_sources(report), "",
             "## Verdicts and provenance tags", "",
             "| verdict | meaning |", "|---|---|",
             *(f"| {v} | {m} |" for v, m in VERDICT_MEANING.items()), "",
             tag_table_markdown(), ""]
    for s in report.sections:
        lines += _section(s, figure_prefix, report.results_root)
    return "\n".join(lines).rstrip() + "\n"
