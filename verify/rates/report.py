"""Verdict tables (console and Markdown) and the files written next to the rows."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from verify.verdicts import count_verdicts

from .theorems import THEOREMS

__all__ = ["format_table", "markdown_table", "write_verdicts", "summary_counts"]

_COLUMNS = ("algorithm", "check", "estimate [95% CI]", "expected", "verdict", "prov.")


def _estimate(r: dict) -> str:
    est, ci = r.get("estimate"), r.get("ci") or [None, None]
    if not isinstance(est, (int, float)) or not math.isfinite(est):
        return "—"
    if not all(isinstance(v, (int, float)) for v in ci):
        return f"{est:+.3f}"
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


def margin_text(r: dict) -> str:
    m = r.get("margin_se")
    if m is None or r.get("verdict") == "MEASURED":
        return "—"
    if isinstance(m, float) and math.isinf(m):
        return "exact" if m > 0 else "outside (exact)"
    return f"{m:+.1f}"


def power_text(r: dict) -> str:
    """``rejected/total`` alternatives and what the check cannot tell from its claim."""
    p = r.get("power")
    if not p:
        return "—"
    alts = p["alternatives"]
    if not p["measured"]:
        return "not measured"
    rejected = sum(1 for a in alts if a["rejected"])
    text = f"{rejected}/{len(alts)} rejected; cannot tell: {p['resolution']}"
    if p["not_rejected"]:
        text += f"; NOT rejected: {', '.join(p['not_rejected'])}"
    return text


def markdown_table(results: list[dict], *, reasons: bool = True) -> str:
    head = ("| algorithm | check | claim | estimate [95% CI] | expected | margin (SE) | power: alternatives rejected, "
            "resolution | verdict | provenance |")
    out = [head, "|" + "---|" * 9]
    for r in results:
        out.append("| " + " | ".join(_md(x) for x in (r["algorithm"], r["key"], r.get("claim", ""), _estimate(r),
                                                       r.get("expected", ""), margin_text(r), power_text(r),
                                                       f"**{r['verdict']}**", r["provenance"])) + " |")
    if reasons:
        out += ["", "Reasons:", ""]
        out += [f"- `{r['key']}`: {_md(r['reason'])}" for r in results]
    return "\n".join(out)


def summary_counts(results: list[dict]) -> dict[str, Any]:
    return {**count_verdicts(results), "algorithms": sorted({r["algorithm"] for r in results})}


def strict_json(obj: Any) -> Any:
    """NaN and ±inf -> None (strict JSON), recursively; the reasons carry the words."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def disagreements(results: list[dict], other: list[dict]) -> list[dict]:
    """Checks whose verdict differs between this grid's results and another grid's."""
    theirs = {r["key"]: r for r in other}
    out = []
    for r in results:
        o = theirs.get(r["key"])
        if o is not None and o.get("verdict") != r.get("verdict"):
            out.append({"check": r["key"], "here": r["verdict"], "there": o["verdict"],
                        "estimate_here": r.get("estimate"), "estimate_there": o.get("estimate")})
    return out


def _other_grid(directory: Path, grid: str) -> tuple[str, list[dict]] | None:
    """The other grid's results (quick <-> full) next to ``directory``, when they exist."""
    other = {"quick": "full", "full": "quick"}.get(grid)
    if other is None:
        return None
    path = directory.parent / other / "verdicts.json"
    if not path.exists():
        return None
    try:
        return other, json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return None


def _disagreement_section(grid: str, other: str, rows: list[dict]) -> str:
    lines = [f"## Where the {grid} and the {other} grid disagree", ""]
    if not rows:
        return "\n".join(lines + [f"No check has a different verdict on the {other} grid.", ""])
    lines += [f"| check | {grid} | {other} | estimate ({grid}) | estimate ({other}) |", "|---|---|---|---|---|"]
    fmt = lambda v: f"{v:+.3f}" if isinstance(v, (int, float)) and math.isfinite(v) else "—"  # noqa: E731
    for d in rows:
        lines.append(f"| `{d['check']}` | {d['here']} | {d['there']} | {fmt(d['estimate_here'])} | {fmt(d['estimate_there'])} |")
    return "\n".join(lines + [""])


def write_verdicts(directory: str | Path, results: list[dict], meta: dict[str, Any], *, other_grid: bool = True) -> list[Path]:
    """``verdicts.json`` (every result with its fit and power), ``verdicts.md`` and ``theorems.json``.

    When the other grid's verdicts exist next to this one (``<root>/quick`` and ``<root>/full``), both
    verdicts.md files list the checks whose verdicts differ (each file is rewritten).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    grid = meta.get("grid", "?")
    other = _other_grid(directory, grid) if other_grid else None
    data = {"meta": meta, "summary": summary_counts(results), "results": strict_json(results)}
    if other is not None:
        data["disagreements"] = {other[0]: strict_json(disagreements(results, other[1]))}
    p = directory / "verdicts.json"
    with open(p, "w") as fh:
        json.dump(data, fh, indent=1, allow_nan=False, default=str)
    paths.append(p)
    p = directory / "verdicts.md"
    p.write_text(verdicts_markdown(data, other))
    paths.append(p)
    if other is not None:  # keep the other grid's page in step: the same disagreements, seen from there
        other_dir = directory.parent / other[0]
        other_data = json.loads((other_dir / "verdicts.json").read_text())
        other_data["disagreements"] = {grid: strict_json(disagreements(other[1], results))}
        with open(other_dir / "verdicts.json", "w") as fh:
            json.dump(other_data, fh, indent=1, allow_nan=False, default=str)
        (other_dir / "verdicts.md").write_text(verdicts_markdown(other_data, (grid, data["results"])))
        paths += [other_dir / "verdicts.json", other_dir / "verdicts.md"]
    p = directory / "theorems.json"
    with open(p, "w") as fh:
        json.dump({k: t.to_dict() for k, t in THEOREMS.items()}, fh, indent=1)
    paths.append(p)
    return paths


def verdicts_markdown(data: dict[str, Any], other: tuple[str, list[dict]] | None) -> str:
    meta, counts, results = data["meta"], data["summary"], data["results"]
    grid = meta.get("grid", "?")
    header = [f"# Rate checks ({grid} grid)", "",
              f"Asserted: {counts['asserted']}. Reported (reconstructed claims, checks without measured power, and "
              f"measurements; never passed): {counts['reported']}.", "",
              "Regenerate: `" + meta.get("command", "verify rates") + "`. Verdicts and provenance tags: "
              "docs/verdicts.md; power and resolution: docs/rates.md.", ""]
    body = markdown_table(results) + "\n"
    if other is not None:
        body += "\n" + _disagreement_section(grid, other[0], disagreements(results, other[1]))
    return "\n".join(header) + body
