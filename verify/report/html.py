"""The report as one standalone HTML page: inline CSS, figures as data URIs, no script, no network."""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path
from typing import Any

from verify.verdicts import TAGS

from .model import COUNT_COLUMNS, KIND_TITLES, Report, Section, verdict_counts
from .text import HOW_TO_READ, REGENERATE, TITLE, VERDICT_MEANING, split_numbers, value_text

__all__ = ["render_html", "figure_id"]

CSS = """
:root { --fg: #1d232b; --muted: #5b6673; --line: #d8dde3; --bg: #ffffff; --band: #f5f7f9; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg);
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px 28px 64px; }
h1 { font-size: 1.8em; margin: 0.2em 0 0.4em; }
h2 { font-size: 1.35em; margin: 2.2em 0 0.6em; padding-top: 0.6em; border-top: 2px solid var(--line); }
h3 { font-size: 1.08em; margin: 1.6em 0 0.5em; }
p { margin: 0.5em 0; }
code { font: 0.86em/1.3 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: var(--muted); }
nav ol { columns: 2; margin: 0.4em 0; }
table { border-collapse: collapse; width: 100%; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid var(--line); padding: 5px 8px; vertical-align: top; text-align: left; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
tr.total td { font-weight: 700; background: var(--band); }
td.claim { min-width: 260px; }
td.reason { min-width: 300px; color: #2b333d; }
.key { display: block; margin-top: 4px; }
.badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 0.82em; font-weight: 700;
         white-space: nowrap; border: 1px solid transparent; }
.badge.asserted.PASS { background: #1f8a4c; color: #fff; }
.badge.asserted.FAIL { background: #c62828; color: #fff; }
.badge.asserted.INCONCLUSIVE { background: #e0a100; color: #1d232b; }
.badge.asserted.ERROR { background: #6d1b1b; color: #fff; }
.badge.reported { background: #fff; font-weight: 600; }
.badge.reported.CONSISTENT { border-color: #1f8a4c; color: #1f6b3d; }
.badge.reported.INCONSISTENT { border-color: #c62828; color: #a11f1f; }
.badge.reported.INCONCLUSIVE { border-color: #c99000; color: #7a5a00; }
.badge.reported.MEASURED { border-color: #5b6673; color: #3e4852; }
.badge.reported.ERROR { border-color: #6d1b1b; color: #6d1b1b; }
.tag { font-weight: 700; white-space: nowrap; }
.intro { color: #2b333d; max-width: 980px; }
.counts { color: var(--muted); }
figure { margin: 1em 0 1.6em; padding: 10px; border: 1px solid var(--line); background: var(--band); }
figure img { display: block; max-width: 100%; height: auto; margin: 0 auto; background: #fff; }
figcaption { font-size: 0.85em; color: var(--muted); margin-top: 6px; }
.figref, .missing { color: var(--muted); font-size: 0.9em; }
.missing { color: #a11f1f; }
details { margin-top: 4px; color: var(--muted); font-size: 0.92em; }
"""


def figure_id(path: str) -> str:
    return "fig-" + "".join(ch if ch.isalnum() else "-" for ch in path.rsplit(".", 1)[0]).strip("-")


def _badge(row: dict[str, Any]) -> str:
    kind = "asserted" if row["asserted"] else "reported"
    return f'<span class="badge {kind} {escape(row["verdict"])}">{escape(row["verdict"])}</span>'


def _text(value: Any) -> str:
    return escape(value_text(value))


def _summary(report: Report) -> list[str]:
    asserted = sum(1 for g, _ in COUNT_COLUMNS if g == "asserted")
    reported = len(COUNT_COLUMNS) - asserted
    out = ['<table id="summary" class="summary">',
           f'<thead><tr><th rowspan="2">paper</th><th rowspan="2" class="num">claims</th>'
           f'<th colspan="{asserted}">asserted</th><th colspan="{reported}">reported</th></tr><tr>'
           + "".join(f'<th class="num">{escape(v)}</th>' for _, v in COUNT_COLUMNS) + "</tr></thead><tbody>"]
    for s in report.sections:
        counts = verdict_counts(s.rows)
        out.append(f'<tr><td><a href="#{s.anchor}">{escape(s.paper)}</a></td><td class="num">{len(s.rows)}</td>'
                   + "".join(f'<td class="num">{n}</td>' for n in counts) + "</tr>")
    total = verdict_counts(report.rows)
    out.append(f'<tr class="total"><td>all</td><td class="num">{len(report.rows)}</td>'
               + "".join(f'<td class="num">{n}</td>' for n in total) + "</tr></tbody></table>")
    return out


def _sources(report: Report) -> list[str]:
    out = ['<table id="sources"><thead><tr><th>results</th><th>files</th><th>commit</th><th>clean tree</th>'
           "<th>detail</th></tr></thead><tbody>"]
    for src in report.sources:
        commit = f"<code>{escape(src.commit[:12])}</code>" if src.commit else "not recorded"
        clean = {True: "yes", False: "<strong>no</strong>", None: "unknown"}[src.clean]
        out.append(f"<tr><td>{escape(src.name)}</td><td><code>results/{escape(src.path)}</code></td><td>{commit}</td>"
                   f"<td>{clean}</td><td>{escape(src.detail)}</td></tr>")
    out.append("</tbody></table>")
    return out


def _legend() -> list[str]:
    out = ['<table id="verdicts"><thead><tr><th>verdict</th><th>meaning</th></tr></thead><tbody>']
    for v, meaning in VERDICT_MEANING.items():
        kind = "reported" if v in ("CONSISTENT", "INCONSISTENT", "MEASURED") else "asserted"
        out.append(f'<tr><td><span class="badge {kind} {v}">{v}</span></td><td>{escape(meaning)}</td></tr>')
    out.append('</tbody></table><table id="tags"><thead><tr><th>tag</th><th>meaning</th><th>category</th>'
               "<th>may a check assert it?</th></tr></thead><tbody>")
    for t in TAGS.values():
        out.append(f'<tr><td class="tag">[{escape(t.code)}]</td><td>{escape(t.meaning)}</td><td>{escape(t.category)}'
                   f"</td><td>{'yes' if t.assertable else 'no'}: {escape(t.rule)}</td></tr>")
    out.append("</tbody></table>")
    return out


def _details(rest: dict[str, Any]) -> str:
    if not rest:
        return ""
    items = "".join(f"<li><code>{escape(k)}</code>: {_text(v)}</li>" for k, v in rest.items())
    return f"<details><summary>numbers</summary><ul>{items}</ul></details>"


def _rows(rows: list[dict[str, Any]]) -> list[str]:
    out = ['<table class="claims"><thead><tr><th>claim</th><th>where</th><th>tag</th><th>claimed</th><th>measured</th>'
           "<th>verdict</th><th>reason</th></tr></thead><tbody>"]
    for r in rows:
        claimed, measured, rest = split_numbers(r.get("numbers") or {})
        out.append(f'<tr id="claim-{escape(r["key"])}" data-verdict="{escape(r["verdict"])}">'
                   f'<td class="claim">{escape(r["statement"])}<code class="key">{escape(r["key"])}</code></td>'
                   f'<td>{escape(r["where"])}</td><td class="tag">{escape(r["provenance"])}</td>'
                   f"<td>{_text(claimed)}</td><td>{_text(measured)}{_details(rest)}</td>"
                   f'<td>{_badge(r)}</td><td class="reason">{escape(r["reason"])}</td></tr>')
    out.append("</tbody></table>")
    return out


def _figure(path: str, root: Path, shown: dict[str, str], section: Section) -> list[str]:
    fid = figure_id(path)
    if path in shown:
        return [f'<p class="figref">Figure <a href="#{fid}">results/{escape(path)}</a> (shown under '
                f'{escape(shown[path])}).</p>']
    file = root / path
    if not file.is_file():
        return [f'<p class="missing">figure missing: results/{escape(path)}</p>']
    shown[path] = section.paper
    data = base64.b64encode(file.read_bytes()).decode("ascii")
    return [f'<figure id="{fid}"><img src="data:image/png;base64,{data}" alt="results/{escape(path)}">'
            f"<figcaption>results/{escape(path)}</figcaption></figure>"]


def _section(s: Section, root: Path, shown: dict[str, str]) -> list[str]:
    counts = verdict_counts(s.rows)
    summary = ", ".join(f"{n} {v if g == 'asserted' else 'reported ' + v}" for (g, v), n in zip(COUNT_COLUMNS, counts)
                        if n)
    out = [f'<section id="{s.anchor}" class="paper" data-paper="{escape(s.paper)}">', f"<h2>{escape(s.paper)}</h2>"]
    out += [f'<p class="intro">{escape(p)}</p>' for p in s.intro.split("\n\n") if p]
    out.append(f'<p class="counts">{len(s.rows)} claims: {escape(summary)}.</p>')
    for kind, title in KIND_TITLES.items():
        rows = s.rows_of(kind)
        if rows:
            out += [f"<h3>{escape(title)}</h3>", *_rows(rows)]
    if s.figures:
        out.append("<h3>Figures</h3>")
        for fig in s.figures:
            out += _figure(fig, root, shown, s)
    out.append("</section>")
    return out


def render_html(report: Report) -> str:
    shown: dict[str, str] = {}
    body = [f"<h1>{escape(TITLE)}</h1>", f"<p>{escape(HOW_TO_READ)}</p>",
            f"<p>Regenerate: <code>{escape(REGENERATE)}</code>.</p>",
            '<nav><h2 id="contents">Contents</h2><ol>'
            + "".join(f'<li><a href="#{s.anchor}">{escape(s.paper)}</a></li>' for s in report.sections)
            + '<li><a href="#legend">Verdicts and provenance tags</a></li></ol></nav>',
            '<h2 id="summary-heading">Summary</h2>', *_summary(report),
            '<h2 id="origin">Where the results came from</h2>', *_sources(report),
            '<h2 id="legend">Verdicts and provenance tags</h2>', *_legend()]
    for s in report.sections:
        body += _section(s, report.results_root, shown)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(TITLE)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
            + "\n".join(body) + "\n</main>\n</body>\n</html>\n")
