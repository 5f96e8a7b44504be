r"""Regression against our own committed runs: a code change that moves a reported number must show.

Reported checks (CONSISTENT, MEASURED) never fail ``verify rates``: a bug that moves an unverified
slope by 0.2 would pass silently. ``verify rates --regression`` recomputes the grid (into a fresh
``--out``) and compares, with the committed **clean** results (rows whose code matched their
commit):

* every check's estimate (slope, slope gap, log-ratio, bound ratio, exponent), and
* every cell's level: the log of the seed mean of its first metric at its largest horizon,

with a tolerance of ``tolerance`` bootstrap standard errors (the larger of the two runs' SEs; the SE
of a level is the seed standard error of the mean, relative). Same code and same seeds reproduce
every value (the runs are deterministic), so anything beyond a few SEs is a change of the code or
the platform, never seed noise. A zero-width interval (a deterministic cell) gets the floor
``1e-6·(1 + |estimate|)`` (round-off across platforms). A check whose asserted verdict changed is
flagged whatever the size of the move. An empty comparison fails: the command never passes on
nothing compared.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .store import ResultStore, row_values

__all__ = ["compare_with_baseline", "format_regression", "level_of", "DEFAULT_TOLERANCE"]

DEFAULT_TOLERANCE = 4.0
_Z95 = 1.959963984540054
_FLOOR = 1e-6


def _se(ci) -> float:
    try:
        lo, hi = float(ci[0]), float(ci[1])
    except (TypeError, ValueError, IndexError):
        return math.nan
    return (hi - lo) / (2 * _Z95) if math.isfinite(lo) and math.isfinite(hi) else math.nan


def level_of(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """(log of the seed mean of the row's first metric at its largest horizon, its relative seed SE)."""
    metric = row["spec"]["metrics"][0]
    values = row_values(dict(row), metric)[-1]
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        return None
    mean = float(values.mean())
    se = float(values.std(ddof=1) / math.sqrt(values.size)) / mean if values.size > 1 else 0.0
    return math.log(mean), se


def _allowed(se_a: float, se_b: float, estimate: float, tolerance: float) -> float:
    ses = [s for s in (se_a, se_b) if math.isfinite(s)]
    se = max(ses) if ses else 0.0
    return max(tolerance * se, _FLOOR * (1.0 + abs(estimate)))


def _clean(row: Mapping[str, Any]) -> bool:
    prov = row.get("provenance", {})
    return prov.get("git_commit") is not None and prov.get("git_dirty") is False


def compare_with_baseline(results: list[dict], rows: Mapping[str, dict], baseline_dir: str | Path, *,
                          tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """Compare fresh check ``results`` and cell ``rows`` with the verdicts and rows stored in ``baseline_dir``."""
    if not tolerance > 0:
        raise ValueError(f"tolerance must be > 0 standard errors, got {tolerance!r}")
    baseline_dir = Path(baseline_dir)
    path = baseline_dir / "verdicts.json"
    report: dict[str, Any] = {"baseline": str(baseline_dir), "tolerance_se": tolerance, "checks_compared": 0,
                              "cells_compared": 0, "moved": [], "verdict_changed": [], "not_comparable": [],
                              "missing_in_baseline": []}
    if not path.exists():
        report.update(failed=True, reason=f"no baseline {path}")
        return report
    base = {r["key"]: r for r in json.loads(path.read_text())["results"]}
    store = ResultStore(baseline_dir)
    base_rows = {r["key"]: r for r in store.all_rows()}
    for key, row in rows.items():
        old = base_rows.get(key)
        if old is None or old.get("digest") != row.get("digest"):
            report["missing_in_baseline"].append(key)
            continue
        if not _clean(old):
            report["not_comparable"].append(f"{key} (baseline row computed from a dirty tree)")
            continue
        new_level, old_level = level_of(row), level_of(old)
        if new_level is None or old_level is None:
            if (new_level is None) != (old_level is None):
                report["moved"].append({"what": f"cell {key}", "baseline": None if old_level is None else old_level[0],
                                        "now": None if new_level is None else new_level[0], "allowed": 0.0,
                                        "why": "finite in one run, not in the other"})
            continue
        report["cells_compared"] += 1
        allowed = _allowed(new_level[1], old_level[1], old_level[0], tolerance)
        if abs(new_level[0] - old_level[0]) > allowed:
            report["moved"].append({"what": f"cell {key} (log level)", "baseline": old_level[0], "now": new_level[0],
                                    "allowed": allowed, "in_se": _in_se(new_level[0] - old_level[0],
                                                                         max(new_level[1], old_level[1]))})
    for r in results:
        old = base.get(r["key"])
        if old is None:
            report["missing_in_baseline"].append(f"check {r['key']}")
            continue
        if any(k in report["missing_in_baseline"] or any(k in n for n in report["not_comparable"]) for k in r["cells"]):
            continue
        if old.get("asserted") and r.get("asserted") and old.get("verdict") != r.get("verdict"):
            report["verdict_changed"].append({"check": r["key"], "baseline": old.get("verdict"), "now": r.get("verdict")})
        est_new, est_old = r.get("estimate"), old.get("estimate")
        finite = [isinstance(v, (int, float)) and math.isfinite(v) for v in (est_new, est_old)]
        if not any(finite):
            continue
        if not all(finite):
            report["moved"].append({"what": f"check {r['key']}", "baseline": est_old, "now": est_new, "allowed": 0.0,
                                    "why": "finite in one run, not in the other"})
            continue
        report["checks_compared"] += 1
        se_new, se_old = _se(r.get("ci")), _se(old.get("ci"))
        allowed = _allowed(se_new, se_old, est_old, tolerance)
        if abs(est_new - est_old) > allowed:
            se = max(s for s in (se_new, se_old, 0.0) if math.isfinite(s))
            report["moved"].append({"what": f"check {r['key']}", "baseline": est_old, "now": est_new, "allowed": allowed,
                                    "in_se": _in_se(est_new - est_old, se)})
    nothing = report["checks_compared"] + report["cells_compared"] == 0
    report["failed"] = bool(report["moved"] or report["verdict_changed"] or nothing)
    report["reason"] = ("nothing could be compared (no clean baseline rows with the same settings)" if nothing
                        else f"{len(report['moved'])} value(s) moved, {len(report['verdict_changed'])} asserted verdict(s) "
                             "changed")
    return report


def _in_se(diff: float, se: float) -> float | None:
    return diff / se if se > 0 else None


def format_regression(report: Mapping[str, Any]) -> str:
    lines = [f"regression against {report['baseline']} (tolerance {report['tolerance_se']:g} SE): "
             f"{report['checks_compared']} check estimates and {report['cells_compared']} cell levels compared: "
             f"{'FAIL' if report['failed'] else 'PASS'} ({report['reason']})"]
    for m in report["moved"]:
        se = m.get("in_se")
        size = f", {se:+.1f} SE" if isinstance(se, float) else ""
        lines.append(f"  moved: {m['what']}: {m['baseline']} -> {m['now']} (allowed ±{m['allowed']:.3g}{size})"
                     + (f" [{m['why']}]" if m.get("why") else ""))
    for v in report["verdict_changed"]:
        lines.append(f"  verdict changed: {v['check']}: {v['baseline']} -> {v['now']}")
    if report["not_comparable"]:
        lines.append(f"  not comparable: {len(report['not_comparable'])} (e.g. {report['not_comparable'][0]})")
    if report["missing_in_baseline"]:
        lines.append(f"  not in the baseline: {len(report['missing_in_baseline'])} "
                     f"(e.g. {report['missing_in_baseline'][0]})")
    return "\n".join(lines)
