r"""Power of the rate checks: the alternatives each check must reject, run and evaluated like the claim.

A verdict that cannot fail on the alternative gives false confidence. Every check therefore
declares what it must tell apart from its claim (:class:`~verify.rates.spec.Alternative`), and
``verify rates --power`` runs them:

* **schedule alternatives** (generated from ``Check.resolution`` r): the correct algorithm on the
  step-size exponent :math:`p^\star \pm (r + 0.05)` and :math:`p^\star \pm (r + 0.2)`, where
  :math:`p^\star` is the claimed schedule's exponent (0 for a constant step, 1/2 for
  :math:`\eta_0/\sqrt T`, q for MARS's :math:`\eta_0 (s+t)^{-q}`). The step is matched to the claimed
  one at the window's smallest horizon :math:`T_0`, so only the exponent changes:
  :math:`\eta(T) = \eta^\star(T_0)\,(T_0/T)^p` (fixed-horizon runs, one per T in the window) or
  :math:`\eta_t = \eta_0' (s+t)^{-q}` with :math:`\eta_0'` chosen so that :math:`\eta_{T_0}` is unchanged;
* **mutant alternatives**: the check's planted bugs (``Check.mutants``);
* **method alternatives**: the rates the paper claims to beat (``Check.alternatives``).

An alternative is **rejected** when the check's statistical outcome on it is FAIL. A check is
*powered* when its power was measured, every alternative was rejected, and at least one rejected
alternative is a method-specific planted bug (not the generic "frozen" one, not a noise premise
violation). Only a powered check with an assertable tag is asserted (:func:`gate_with_power`);
the others are reported with the alternatives they did not reject. What no alternative can
resolve is stated as the check's resolution: exponents within r of the claim are not told apart.

Alternative cells are stored next to the grid's rows under the key ``<cell>@<alternative>``, so the
verdicts are re-evaluated from the files like every other check.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

from .spec import Alternative, Cell, Check, mutant_alternative

__all__ = ["claimed_exponent", "schedule_alternatives", "alternatives_of", "alternative_grid", "summarize_power",
           "is_method_specific", "SCHEDULE_OFFSETS"]

#: schedule exponents tested beyond the resolution r: p* ± (r + offset)
SCHEDULE_OFFSETS = (0.05, 0.2)


def claimed_exponent(schedule: Mapping[str, Any]) -> float:
    """The step-size exponent of a schedule: η ∝ T^(−p) (fixed horizon) or η_t ∝ t^(−q) (anytime)."""
    kind = schedule["kind"]
    if kind in ("constant", "one_over_L"):
        return 0.0
    if kind == "inverse_sqrt_horizon":
        return 0.5
    if kind == "horizon_power":
        return float(schedule["p"])
    if kind in ("mars_theory", "anytime_power"):
        return float(schedule.get("q", 1.0 / 3.0))
    raise ValueError(f"no step-size exponent for schedule kind {kind!r}")


def _step_at(cell: Cell, T: int) -> float:
    """The claimed schedule's step at horizon (or step) T."""
    from .execute import horizon_eta, mars_theory_eta
    from .problems import build_problem

    kind = cell.schedule["kind"]
    if kind == "constant":
        return float(cell.schedule["eta"])
    if kind == "one_over_L":
        return 1.0 / build_problem(*cell.problem).L
    if kind in ("inverse_sqrt_horizon", "horizon_power"):
        return horizon_eta(cell.schedule, T)
    return mars_theory_eta(cell.schedule)(T)


def _alternative_schedule(cell: Cell, exponent: float, T0: int) -> dict:
    kind = cell.schedule["kind"]
    if kind in ("mars_theory", "anytime_power"):
        s, q = float(cell.schedule["s"]), claimed_exponent(cell.schedule)
        eta0 = float(cell.schedule["eta0"]) * (s + T0) ** (exponent - q)  # same η at t = T0
        return {**cell.schedule, "eta0": eta0, "q": exponent}
    out = {"kind": "horizon_power", "eta_ref": _step_at(cell, T0), "T_ref": int(T0), "p": exponent}
    if cell.schedule.get("beta2_horizon"):
        out["beta2_horizon"] = True
    return out


def schedule_alternatives(check: Check, cell: Cell) -> list[Alternative]:
    """The schedule alternatives of ``check`` on its subject ``cell`` (empty when ``resolution`` is None)."""
    if check.resolution is None:
        return []
    p_star = claimed_exponent(cell.schedule)
    out = []
    for offset in SCHEDULE_OFFSETS:
        for sign in (-1.0, 1.0):
            p = round(p_star + sign * (check.resolution + offset), 6)
            out.append(Alternative(key=f"p{p:+.3f}", kind="schedule", exponent=p,
                                   label=f"η ∝ {'T' if not cell.anytime or cell.schedule['kind'] in ('constant', 'one_over_L') else '(s+t)'}"
                                         f"^({-p:+.3f}) (claimed exponent {-p_star:+.3f}), matched at the window's first horizon"))
    return out


def is_method_specific(mutant: str) -> bool:
    from .mutants import MUTANTS

    m = MUTANTS.get(mutant)
    return m is not None and m.noise is None and not mutant.endswith("_frozen_after_first_step")


def alternatives_of(check: Check, cells_by_key: Mapping[str, Cell]) -> list[Alternative]:
    """Every alternative of ``check``: schedule, declared method alternatives, then its mutants."""
    subject = cells_by_key[check.cells[0]]
    return (schedule_alternatives(check, subject) + list(check.alternatives)
            + [mutant_alternative(m) for m in check.mutants])


def _window_horizons(check: Check, cell: Cell) -> tuple[int, ...]:
    if check.window is None:
        return cell.horizons
    kept = tuple(T for T in cell.horizons if check.window[0] <= T <= check.window[1])
    return kept if len(kept) >= 2 else cell.horizons


def _transform(check: Check, cell: Cell, alt: Alternative) -> Cell:
    key = f"{cell.key}@{alt.key}"
    label = f"{cell.label} [{alt.label}]"
    if alt.kind == "schedule":
        schedule = _alternative_schedule(cell, float(alt.exponent), _window_horizons(check, cell)[0])
        horizons = cell.horizons if schedule["kind"] in ("mars_theory", "anytime_power") else _window_horizons(check, cell)
        return replace(cell, key=key, label=label, schedule=schedule, horizons=horizons)
    if alt.kind == "method":
        algorithm = alt.algorithm or cell.algorithm
        hyper = dict(alt.hyper or {}) if algorithm != cell.algorithm else {**cell.hyper, **(alt.hyper or {})}
        return replace(cell, key=key, label=label, algorithm=algorithm, hyper=hyper,
                       schedule=dict(alt.schedule) if alt.schedule else cell.schedule)
    from .mutants import MUTANTS

    m = MUTANTS[alt.mutant]
    if m.noise is not None:
        return replace(cell, key=key, label=label, noise=(m.noise, {"level": float(cell.noise[1].get("level", 1.0))}))
    return replace(cell, key=key, label=label, algorithm=f"mutant:{alt.mutant}")


def _touched(check: Check, alt: Alternative, cells_by_key: Mapping[str, Cell]) -> list[str]:
    """The check's cells an alternative replaces: the subject cell, or every cell of the mutant's base algorithm."""
    if alt.kind != "mutant":
        return [check.cells[0]]
    from .mutants import MUTANTS

    try:
        base = MUTANTS[alt.mutant].base
    except KeyError:
        raise ValueError(f"check {check.key}: unknown mutant {alt.mutant!r}") from None
    touched = [k for k in check.cells if cells_by_key[k].algorithm == base]
    if not touched:
        raise ValueError(f"check {check.key}: mutant {alt.mutant} (of {base}) touches none of its cells")
    return touched


def alternative_grid(cells: list[Cell], checks: list[Check]) -> tuple[list[Cell], dict[str, list[tuple[Alternative, Check]]]]:
    """The cells the alternatives need (deduplicated by key) and, per check, its renamed alternative checks."""
    by_key = {c.key: c for c in cells}
    by_spec = {_spec_without_key(c): c.key for c in cells}
    out_cells: dict[str, Cell] = {}
    plan: dict[str, list[tuple[Alternative, Check]]] = {}
    for check in checks:
        if any(k not in by_key for k in check.cells):
            continue
        entries = []
        for alt in alternatives_of(check, by_key):
            renamed = {}
            for k in _touched(check, alt, by_key):
                new = _transform(check, by_key[k], alt)
                same = by_spec.get(_spec_without_key(new))
                if same is not None:  # the alternative is a cell of the grid already (e.g. MARS with γ = 0)
                    renamed[k] = same
                    continue
                previous = out_cells.get(new.key)
                if previous is not None and previous.digest() != new.digest():
                    raise ValueError(f"alternative cell {new.key} is defined two ways (checks disagree on its window)")
                out_cells[new.key] = new
                renamed[k] = new.key
            cells_used = tuple(renamed.get(k, k) for k in check.cells)
            for k in cells_used:
                if k not in renamed.values():
                    out_cells.setdefault(k, by_key[k])  # a comparison partner, unchanged
            entries.append((alt, replace(check, key=f"{check.key}@{alt.key}", cells=cells_used)))
        plan[check.key] = entries
    return list(out_cells.values()), plan


def _spec_without_key(cell: Cell) -> str:
    import json

    spec = cell.spec()
    spec.pop("key")
    return json.dumps(spec, sort_keys=True)


def summarize_power(check: Check, evaluated: list[tuple[Alternative, dict | None]]) -> dict[str, Any]:
    """Power of one check from its evaluated alternatives (``None`` where the alternative's rows are missing)."""
    rows = []
    for alt, res in evaluated:
        entry = {"key": alt.key, "kind": alt.kind, "label": alt.label, "exponent": alt.exponent, "mutant": alt.mutant}
        if res is None:
            entry.update(measured=False, rejected=None, outcome=None, estimate=None, reason="not run")
        else:
            estimate = res.get("estimate")
            entry.update(measured=True, outcome=res["outcome"], rejected=res["outcome"] == "FAIL",
                         estimate=estimate if isinstance(estimate, float) and math.isfinite(estimate) else None,
                         ci=res.get("ci"), reason=res["reason"])
        rows.append(entry)
    measured = bool(rows) and all(r["measured"] for r in rows)
    not_rejected = [r["key"] for r in rows if r["measured"] and not r["rejected"]]
    specific = [r["mutant"] for r in rows if r["kind"] == "mutant" and r["rejected"] and is_method_specific(r["mutant"])]
    p_values = sorted(r["exponent"] for r in rows if r["kind"] == "schedule")
    if check.resolution is None:
        resolution = f"schedule alternatives not applicable: {check.no_schedule_power}"
    else:
        untold = [f"{r['exponent']:+.2f}" for r in rows if r["kind"] == "schedule" and r["measured"] and not r["rejected"]]
        resolution = f"±{check.resolution:g} around the claimed exponent" + (f"; also not rejected: {', '.join(untold)}"
                                                                           if untold else "")
    if not rows:
        why = "no alternatives declared"
    elif not measured:
        why = "power not measured (run verify rates --power)"
    elif not_rejected:
        why = f"does not reject {', '.join(not_rejected)}"
    elif not specific:
        why = "no method-specific planted bug among the rejected alternatives"
    else:
        why = ""
    return {"measured": measured, "powered": measured and not why, "why": why, "resolution": resolution,
            "schedule_exponents": p_values, "alternatives": rows, "not_rejected": not_rejected,
            "method_mutants_rejected": specific}
