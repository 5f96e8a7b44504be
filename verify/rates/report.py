"""Verdict tables (console and Markdown) and the files written next to the rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from .theorems import THEOREMS

__all__ = ["format_table", "markdown_table", "write_verdicts", "summary_counts"]

_COLUMNS = ("algorithm", "check", "estimate [95% CI]", "expected", "verdict", "prov.")


def _estimate(r: dict) -> str:
    est, ci = r.get("estimate", math.nan), r.get("ci", [math.nan, math.nan])
    if not math.isfinite(est):
        return "—"
    if r["kind"] == "bound":
        return f"ratio {est:.3g}"
    if ci[0] == ci[1]:
        return f"{est:+.3f} (exact)"
    return f"{est:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _expected(r: dict) -> str:
    text = r.get("expected", "")
    return text if len(text) < 70 else text[:67] + "..."


def _rows(results: list[dict]) -> list[tuple[str, ...]]:
    return [(r["algorithm"], r["key"], _estimate(r), _expected(r), r["verdict"], r["provenance"]) for r in results]


def format_table(results: list[dict]) -> str:
    rows = [_COLUMNS] + _rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = []
    for j, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(results: list[dict], *, reasons: bool = True) -> str:
    head = "| algorithm | check | claim | estimate [95% CI] | expected | verdict | provenance |"
    out = [head, "|" + "---|" * 7]
    for r in results:
        out.append("| " + " | ".join(_md(x) for x in (r["algorithm"], r["key"], r.get("claim", ""), _estimate(r),
                                                       r.get("expected", ""), f"**{r['verdict']}**", r["provenance"])) + " |")
    if reasons:
        out += ["", "Reasons:", ""]
        out += [f"- `{r['key']}`: {_md(r['reason'])}" for r in results]
    return "\n".join(out)


def summary_counts(results: list[dict]) -> dict[str, Any]:
    asserted = [r for r in results if r.get("asserted")]
    reported = [r for r in results if not r.get("asserted")]
    count = lambda rs, v: sum(r["verdict"] == v for r in rs)  # noqa: E731
    return {
        "asserted": {v: count(asserted, v) for v in ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")},
        "reported": {v: count(reported, v) for v in ("CONSISTENT", "INCONSISTENT", "INCONCLUSIVE", "MEASURED", "ERROR")},
        "algorithms": sorted({r["algorithm"] for r in results}),
    }


def write_verdicts(directory: str | Path, results: list[dict], meta: dict[str, Any]) -> list[Path]:
    """``verdicts.json`` (every result with its fit), ``verdicts.md`` and ``theorems.json``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    data = {"meta": meta, "summary": summary_counts(results), "results": results}
    p = directory / "verdicts.json"
    with open(p, "w") as fh:
        json.dump(data, fh, indent=1, allow_nan=True, default=str)
    paths.append(p)
    p = directory / "verdicts.md"
    counts = data["summary"]
    header = [f"# Rate checks ({meta.get('grid', '?')} grid)", "",
              f"Asserted: {counts['asserted']}. Reported (reconstructed claims, never passed): {counts['reported']}.",
              "", "Regenerate: `" + meta.get("command", "verify rates") + "`.", ""]
    p.write_text("\n".join(header) + markdown_table(results) + "\n")
    paths.append(p)
    p = directory / "theorems.json"
    with open(p, "w") as fh:
        json.dump({k: t.to_dict() for k, t in THEOREMS.items()}, fh, indent=1)
    paths.append(p)
    return paths
