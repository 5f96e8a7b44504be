"""The saved results the paper claims read, and the claim builders the paper modules share.

A paper module (``paper_checks/<paper>.py``) lists its claims as data and builds them with the
functions here; every check reads a file under :data:`RESULTS` (never reruns an engine). What a
check does when its input is missing, malformed or does not hold the row it names is decided here
once: it raises :class:`MissingResult`, which :func:`verify.claims.run_claim` turns into an
``ERROR`` (a failure when the claim is asserted), never a pass.

Result files read (``results/`` relative to the repository root; the engines that write them are in
README):

==============================  ============================================  ========================
file                            written by                                    claims built by
==============================  ============================================  ========================
rates/<grid>/verdicts.json      ``verify rates [--quick]``                    :func:`rate_claims`
memory/paper_comparison.json    ``verify memory``                             :func:`memory_cell_claims`
memory/model_totals.json        ``verify memory``                             the paper modules
rank/<check>.json               ``verify rank --full --write results/rank``   the paper modules
oracle/thirdparty.json          ``python -m verify.oracle.recipes``           :func:`thirdparty_claims`
variants/variants.json          ``python -m verify.variants``                 :func:`variant_claims`
==============================  ============================================  ========================
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from verify.claims import Claim, register
from verify.verdicts import Outcome, gate, parse_tag

__all__ = [
    "RESULTS", "SPECS", "MissingResult", "load", "results_path", "rate_grid", "rate_row", "rate_outcome", "RateClaim",
    "rate_claims", "memory_cell", "MemoryCell", "memory_cell_claims", "model_total", "thirdparty_row",
    "ThirdPartyClaim", "thirdparty_claims", "variant_result", "VariantClaim", "variant_claims", "not_checked",
    "custom", "gpu_state_claim", "model_label", "fmt",
]

#: the results folder every check reads (tests point it at a planted copy)
RESULTS = Path(__file__).resolve().parents[1] / "results"
#: claim key -> the data row it was built from (RateClaim, MemoryCell, ThirdPartyClaim, VariantClaim)
SPECS: dict[str, Any] = {}


class MissingResult(LookupError):
    """A result file, or the row a claim names in it, is missing or unusable (the claim is an ERROR)."""


def results_path(relative: str) -> Path:
    return Path(RESULTS) / relative


def load(relative: str) -> Any:
    """The JSON file ``results/<relative>``; a missing or unreadable file is a :class:`MissingResult`."""
    path = results_path(relative)
    if not path.is_file():
        raise MissingResult(f"results/{relative} is missing (regenerate it: see README)")
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise MissingResult(f"results/{relative} is not readable JSON ({exc})") from None


def model_label(model: str) -> str:
    """``"llama-60m"`` -> ``"LLaMA-60M"``."""
    return "LLaMA-" + model.split("-", 1)[1].upper() if model.startswith("llama-") else model


def fmt(x: Any, digits: int = 4) -> str:
    """A number for a reason string (``g`` format, ``nan``/``inf`` spelled out)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def _finite(name: str, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MissingResult(f"{where}: {name} is {value!r}, not a finite number")
    return float(value)


def _register_spec(c: Claim, spec: Any) -> Claim:
    register(c)
    SPECS[c.key] = spec
    return c


# ----------------------------------------------------------------------------- rates
def rate_grid(quick: bool) -> str:
    return "quick" if quick else "full"


def rate_row(key: str, quick: bool) -> dict:
    """The row ``key`` of ``rates/<grid>/verdicts.json``."""
    relative = f"rates/{rate_grid(quick)}/verdicts.json"
    data = load(relative)
    rows = [r for r in data.get("results", []) if r.get("key") == key]
    if not rows:
        raise MissingResult(f"no rate check {key!r} in results/{relative} (was it renamed or dropped from the grid?)")
    if len(rows) > 1:
        raise MissingResult(f"rate check {key!r} appears {len(rows)} times in results/{relative}")
    return rows[0]


def _power_summary(power: Mapping[str, Any] | None) -> dict:
    if not power:
        return {"measured": False}
    alternatives = power.get("alternatives") or []
    rejected = [a for a in alternatives if a.get("rejected")]
    return {"measured": bool(power.get("measured")), "powered": bool(power.get("powered")),
            "alternatives_rejected": f"{len(rejected)}/{len(alternatives)}",
            "resolution": power.get("resolution") or power.get("why") or None}


def rate_outcome(row: Mapping[str, Any], provenance: str) -> Outcome:
    """The rate engine's outcome for ``row``, gated the way the rate engine gates it.

    The row's provenance must be the claim's (a changed tag is an error, not a silent re-gating); a
    check the engine does not assess is MEASURED, and a check whose measured power is insufficient
    is reported with the engine's reason, whatever its tag.
    """
    key = row.get("key", "?")
    if parse_tag(row.get("provenance", "?")).code != parse_tag(provenance).code:
        raise MissingResult(f"rate check {key}: the result row is tagged {row.get('provenance')}, the claim "
                            f"[{parse_tag(provenance).code}]; update the claim table")
    outcome = row.get("outcome")
    reason = row.get("reason")
    if outcome not in ("PASS", "FAIL", "INCONCLUSIVE", "MEASURED") or not reason:
        raise MissingResult(f"rate check {key}: no outcome/reason in the result row")
    estimate = row.get("estimate")
    power = _power_summary(row.get("power"))
    measured = {"estimate": estimate if isinstance(estimate, (int, float)) else None, "95% CI": row.get("ci")}
    if power.get("measured"):
        measured["power"] = (f"{power['alternatives_rejected']} alternatives rejected"
                             + ("" if power["powered"] else " (not powered)")
                             + (f"; cannot tell: {power['resolution']}" if power.get("resolution") else ""))
    numbers = {"claimed": f"{row.get('claim', '')} (expected: {row.get('expected', '')})", "measured": measured,
               "margin_se": row.get("margin_se"), "window": row.get("window"), "theorem": row.get("theorem")}
    if isinstance(estimate, float) and not math.isfinite(estimate) and outcome == "PASS":
        raise MissingResult(f"rate check {key}: a PASS with a non-finite estimate {estimate!r}")
    if not row.get("assess", True):  # the engine's rule: a check it does not assess is a measurement
        why = row.get("notes") or "no planted bug was found that breaks this claim"
        _strip(reason, f"measured, not judged ({why}); ", key)  # (MEASURED is shown with its reason as is)
        return Outcome("MEASURED", reason, numbers)
    stored_power = row.get("power")
    assess, because = True, ""
    if stored_power and stored_power.get("measured") and not stored_power.get("powered"):
        assess, because = False, f"no power: {stored_power.get('why')}"
    # the stored reason is the gated one: take the gate's prefix off, so gating again gives the row's words
    probe = gate(Outcome(outcome, "\x00"), provenance, assess=assess, not_assessed_because=because).reason
    reason = _strip(reason, probe[:probe.index("\x00")], key)
    if not assess:
        return Outcome(outcome, reason, numbers, assess=False, not_assessed_because=because)
    return Outcome(outcome, reason, numbers)


def _strip(reason: str, prefix: str, key: str) -> str:
    if not reason.startswith(prefix):
        raise MissingResult(f"rate check {key}: its stored reason does not carry the verdict the row records "
                            f"(expected it to start with {prefix!r})")
    rest = reason[len(prefix):]
    if not rest:
        raise MissingResult(f"rate check {key}: empty reason")
    return rest


@dataclass(frozen=True)
class RateClaim:
    """One row of the rate engine, claimed by a paper: its key, its tag and the theorem it tests."""

    key: str
    provenance: str
    theorem: str
    figure: str | None = None  #: the rate figure (``results/rates/quick/figures/<figure>.png``)


def rate_claims(paper: str, prefix: str, theorems: Mapping[str, tuple[str, str]], rows: Iterable[RateClaim]) -> list[Claim]:
    """Register one claim per rate row. ``theorems`` maps a theorem key to ``(where, statement)`` in the
    paper's own numbering (the statement of each row is the theorem's, the row adds its own setting)."""
    made = []
    for spec in rows:
        if spec.theorem not in theorems:
            raise ValueError(f"{prefix}: rate row {spec.key} names theorem {spec.theorem!r}, not in the table")
        where, statement = theorems[spec.theorem]

        def check(quick: bool, spec: RateClaim = spec) -> Outcome:
            row = rate_row(spec.key, quick)
            if row.get("theorem") != spec.theorem:
                raise MissingResult(f"rate check {spec.key}: tests theorem {row.get('theorem')!r}, the claim "
                                    f"{spec.theorem!r}")
            return rate_outcome(row, spec.provenance)

        figures = (f"rates/quick/figures/{spec.figure}.png",) if spec.figure else ()
        made.append(_register_spec(Claim(f"{prefix}.rate.{spec.key}", paper, where, spec.provenance, statement,
                                         "rate", check, figures), spec))
    return made


# ----------------------------------------------------------------------------- memory
def memory_cell(source_prefix: str, model: str, entry: str) -> dict:
    """The cell of ``memory/paper_comparison.json`` whose source starts with ``source_prefix``."""
    data = load("memory/paper_comparison.json")
    cells = [c for c in data.get("cells", []) if str(c.get("source", "")).startswith(source_prefix)
             and c.get("model") == model and c.get("entry") == entry]
    if len(cells) != 1:
        raise MissingResult(f"{len(cells)} cells for ({source_prefix!r}, {model}, {entry!r}) in "
                            "results/memory/paper_comparison.json (expected exactly one)")
    return cells[0]


@dataclass(frozen=True)
class MemoryCell:
    """A memory-table cell: where it is printed, its value, and how it is judged.

    ``claimed`` defaults to the printed value of the comparison file (which must equal ``printed``,
    the value written here from the paper); ``ratio`` cells compare the measured ratio with
    ``claimed`` to ``tolerance`` instead of the file's own match rule.
    """

    source: str  #: the comparison file's ``source`` prefix
    model: str
    entry: str
    printed: float  #: the value as the paper prints it
    where: str
    provenance: str
    statement: str
    ratio: bool = False
    tolerance: float = 0.0
    #: a [D] value computed from numbers the papers print without their accounting (e.g. a difference of
    #: two tables): a mismatch is reported, like a printed cell's
    from_printed: bool = False
    claimed: float | None = None  #: a ratio cell's claimed value when it is not the printed one


#: why a memory-table cell that no accounting reproduces is reported, not asserted
UNSTATED_ACCOUNTING = ("the paper prints the number but not how it was counted (units, which tensors, which parameter "
                       "count); a mismatch is shown with its explanation, not judged as the paper being wrong")


def _printed_table_mismatch(spec: "MemoryCell") -> dict[str, Any]:
    """A number printed in a paper's table ([P]) whose accounting the paper does not state: a mismatch is
    reported. A derived value ([D], [V], [M]: our own arithmetic on stated quantities) stays asserted."""
    from verify.verdicts import parse_tag

    if parse_tag(spec.provenance).code == "P" or spec.from_printed:
        return {"assess": False, "not_assessed_because": UNSTATED_ACCOUNTING}
    return {}


def _memory_outcome(spec: MemoryCell, cell: Mapping[str, Any]) -> Outcome:
    paper_value = _finite("paper_value", cell.get("paper_value"), f"memory cell {spec.model}/{spec.entry}")
    if paper_value != spec.printed:
        raise MissingResult(f"memory cell {spec.model}/{spec.entry}: the comparison file prints {paper_value}, the "
                            f"paper {spec.printed}")
    ours = cell.get("ours") or {}
    if not ours:
        raise MissingResult(f"memory cell {spec.model}/{spec.entry}: no computed values")
    for name, value in ours.items():
        _finite(name, value, f"memory cell {spec.model}/{spec.entry}")
    numbers = {"claimed": spec.printed, "measured": ours}
    if spec.ratio:
        claimed = spec.printed if spec.claimed is None else spec.claimed
        value = _finite("ratio", ours.get("ratio"), f"memory cell {spec.model}/{spec.entry}")
        numbers.update(claimed=claimed, measured=value)
        ok = abs(value - claimed) <= spec.tolerance
        if ok:
            return Outcome("PASS", f"ratio {fmt(value, 6)} within {fmt(spec.tolerance)} of {fmt(claimed)}", numbers)
        return Outcome("FAIL", f"ratio {fmt(value, 6)} outside {fmt(spec.tolerance)} of {fmt(claimed)}", numbers,
                       **_printed_table_mismatch(spec))
    verdict = cell.get("verdict")
    matches = cell.get("matches") or []
    if verdict == "match" and matches and all(m in ours for m in matches):
        return Outcome("PASS", str(cell.get("reason")), numbers)
    if verdict == "mismatch" and not matches:
        return Outcome("FAIL", f"not reproduced by any accounting tried (GB or GiB, with or without projectors); "
                       f"explained: {cell.get('reason')}", numbers, **_printed_table_mismatch(spec))
    raise MissingResult(f"memory cell {spec.model}/{spec.entry}: verdict {verdict!r} with matches {matches}")


def memory_cell_claims(paper: str, prefix: str, cells: Iterable[MemoryCell]) -> list[Claim]:
    made = []
    for spec in cells:
        def check(quick: bool, spec: MemoryCell = spec) -> Outcome:
            return _memory_outcome(spec, memory_cell(spec.source, spec.model, spec.entry))

        key = f"{prefix}.memory.{_slug(spec.source)}.{_slug(spec.model.split(' ')[0])}.{_slug(spec.entry)}"
        made.append(_register_spec(Claim(key, paper, spec.where, spec.provenance, spec.statement, "memory", check),
                                   spec))
    return made


def _slug(text: str) -> str:
    out = "".join(ch.lower() if ch.isalnum() else "-" for ch in text)
    while "--" in out:
        out = out.replace("--", "-")
    return out.strip("-")


def model_total(model: str, algorithm: str) -> dict:
    """The row of ``memory/model_totals.json`` for ``model`` and ``algorithm`` (2-byte elements)."""
    data = load("memory/model_totals.json")
    rows = [r for r in data.get("models", {}).get(model, []) if r.get("algorithm") == algorithm]
    if len(rows) != 1:
        raise MissingResult(f"{len(rows)} rows for {algorithm} at {model} in results/memory/model_totals.json")
    row = rows[0]
    for name in ("states", "projectors", "parameters", "state_GiB_with_projectors", "state_GiB_without_projectors"):
        _finite(name, row.get(name), f"model total {model}/{algorithm}")
    return row


# ----------------------------------------------------------------------------- third-party and authors' code
def thirdparty_row(row_id: str) -> dict:
    data = load("oracle/thirdparty.json")
    rows = [r for r in data.get("rows", []) if r.get("id") == row_id]
    if len(rows) != 1:
        raise MissingResult(f"{len(rows)} rows {row_id!r} in results/oracle/thirdparty.json")
    return rows[0]


@dataclass(frozen=True)
class ThirdPartyClaim:
    """An oracle run of an installed package against a reference: the verdict the claim expects."""

    row: str  #: the row id in ``oracle/thirdparty.json``
    expect: str  #: "PASS" or "FAIL at step N"
    where: str
    provenance: str
    statement: str
    kind: str = "identity"


def _thirdparty_outcome(spec: ThirdPartyClaim, row: Mapping[str, Any]) -> Outcome:
    verdict = row.get("verdict")
    failure = row.get("first_failure")
    if verdict not in ("PASS", "FAIL"):
        raise MissingResult(f"oracle row {spec.row}: verdict {verdict!r}")
    if verdict == "PASS" and failure is not None:
        raise MissingResult(f"oracle row {spec.row}: PASS with a recorded failure")
    measured = "PASS" if verdict == "PASS" else f"FAIL at step {failure.get('step') if failure else '?'}"
    numbers = {"claimed": spec.expect, "measured": measured, "max_param_error": row.get("max_param_error"),
               "implementation": f"{row.get('implementation')} {row.get('version', '')}".strip(),
               "steps": row.get("steps"), "dtype": row.get("dtype"), "rtol": row.get("rtol")}
    detail = f"{row.get('implementation')} vs {row.get('reference')}: {measured}"
    if failure:
        detail += f" ({failure.get('quantity')} of {failure.get('param_name')}: {failure.get('reason')})"
    detail += f"; {row.get('cause')}"
    if measured == spec.expect:
        return Outcome("PASS", f"as claimed: {detail}", numbers)
    return Outcome("FAIL", f"claimed {spec.expect}, measured {detail}", numbers)


def thirdparty_claims(paper: str, prefix: str, specs: Iterable[ThirdPartyClaim]) -> list[Claim]:
    made = []
    for spec in specs:
        def check(quick: bool, spec: ThirdPartyClaim = spec) -> Outcome:
            return _thirdparty_outcome(spec, thirdparty_row(spec.row))

        made.append(_register_spec(Claim(f"{prefix}.oracle.{spec.row}", paper, spec.where, spec.provenance,
                                         spec.statement, spec.kind, check), spec))
    return made


# ----------------------------------------------------------------------------- paper vs code (verify/variants.py)
def variant_result(key: str) -> dict:
    data = load("variants/variants.json")
    rows = [r for r in data.get("results", []) if r.get("key") == key]
    if len(rows) != 1:
        raise MissingResult(f"{len(rows)} results {key!r} in results/variants/variants.json "
                            "(regenerate: verify report --refresh-variants)")
    return rows[0]


@dataclass(frozen=True)
class VariantClaim:
    """A documented difference between a paper and its authors' code (or an exact identity), judged on
    the saved run of :mod:`verify.variants` with the same key. Every condition given must hold:

    ``parts_at``   the first step where the two sides differ by more than the run's tolerance (``None``:
                   never), checked when ``check_step``;
    ``params``     the parameters that ever differ (exactly this set);
    ``windows``    ``(first, last, low, high)``: the largest difference over steps first..last lies in
                   [low, high] (``None``: no bound on that side);
    ``per_param``  parameter -> ``(low, high)`` bounds on its largest difference over the run;
    ``min_error`` / ``max_error``: bounds on the largest difference over the run.
    """

    key: str
    where: str
    provenance: str
    statement: str
    parts_at: int | None = None
    check_step: bool = True
    params: tuple[str, ...] | None = None
    windows: tuple[tuple[int, int, float | None, float | None], ...] = ()
    per_param: Mapping[str, tuple[float | None, float | None]] | None = None
    min_error: float | None = None
    max_error: float | None = None
    kind: str = "code-vs-paper"


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def _bounds_text(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in [{fmt(low)}, {fmt(high)}]"
    return f">= {fmt(low)}" if low is not None else f"<= {fmt(high)}"


def _variant_outcome(spec: VariantClaim, row: Mapping[str, Any]) -> Outcome:
    if row.get("kind") == "construction":
        return _construction_outcome(spec, row)
    control = row.get("control_max_error")
    if control is None or control != 0.0:
        raise MissingResult(f"variant run {spec.key}: the control (identical settings on both sides) differs by "
                            f"{control!r}; the comparison cannot tell a difference from nondeterminism")
    per_param = row.get("first_parting_step_per_param") or {}
    per_step = row.get("max_error_per_step") or []
    if not per_param or not per_step or row.get("steps") != len(per_step):
        raise MissingResult(f"variant run {spec.key}: nothing was compared")
    max_error = row.get("max_error")
    if max_error is None or None in per_step:
        raise MissingResult(f"variant run {spec.key}: a difference is not a number (a non-finite value)")
    first = row.get("first_parting_step")
    problems = []
    if spec.check_step and first != spec.parts_at:
        problems.append(f"first differs at step {first}, claimed {spec.parts_at}")
    if spec.params is not None:
        parted = {p for p, s in per_param.items() if s is not None}
        if parted != set(spec.params):
            problems.append(f"parameters that differ {sorted(parted)}, claimed {sorted(spec.params)}")
    for a, b, low, high in spec.windows:
        if not 1 <= a <= b <= len(per_step):
            raise MissingResult(f"variant run {spec.key}: window {a}..{b} outside the {len(per_step)} steps run")
        worst = max(per_step[a - 1:b])
        if not _within(worst, low, high):
            problems.append(f"largest difference over steps {a}..{b} is {fmt(worst)}, claimed {_bounds_text(low, high)}")
    per_param_max = row.get("max_error_per_param") or {}
    for name, (low, high) in (spec.per_param or {}).items():
        if name not in per_param_max:
            raise MissingResult(f"variant run {spec.key}: no parameter {name!r} (have {sorted(per_param_max)})")
        if not _within(per_param_max[name], low, high):
            problems.append(f"largest difference in {name} is {fmt(per_param_max[name])}, claimed "
                            f"{_bounds_text(low, high)}")
    if (spec.min_error is not None or spec.max_error is not None) and not _within(max_error, spec.min_error,
                                                                                 spec.max_error):
        problems.append(f"largest difference {fmt(max_error)}, claimed {_bounds_text(spec.min_error, spec.max_error)}")
    numbers = {"claimed": _claimed_text(spec), "measured": _measured_text(row), "first_parting_step": first,
               "error_at_parting": row.get("error_at_parting"), "max_error": max_error,
               "parted_params": sorted(p for p, s in per_param.items() if s is not None)}
    if problems:
        return Outcome("FAIL", "; ".join(problems) + f" (measured: {_measured_text(row)})", numbers)
    return Outcome("PASS", _measured_text(row), numbers)


def _construction_outcome(spec: VariantClaim, row: Mapping[str, Any]) -> Outcome:
    ref, cand = row.get("reference_error"), row.get("candidate_error")
    numbers = {"claimed": "the paper variant refuses the setting, the official one accepts it",
               "measured": f"paper: {ref or 'accepted'}; official: {cand or 'accepted'}"}
    if ref and not cand:
        return Outcome("PASS", f"variant='paper' raises ({ref}); variant='official' builds and steps", numbers)
    return Outcome("FAIL", f"claimed: paper raises, official accepts; measured {numbers['measured']}", numbers)


def _claimed_text(spec: VariantClaim) -> str:
    parts = []
    if spec.check_step:
        parts.append("never differ" if spec.parts_at is None else f"first differ at step {spec.parts_at}")
    if spec.params is not None:
        parts.append(f"differ in {', '.join(spec.params) if spec.params else 'no parameter'}")
    parts += [f"steps {a}..{b} {_bounds_text(lo, hi)}" for a, b, lo, hi in spec.windows]
    parts += [f"{name} {_bounds_text(lo, hi)}" for name, (lo, hi) in (spec.per_param or {}).items()]
    if spec.min_error is not None or spec.max_error is not None:
        parts.append(f"largest difference {_bounds_text(spec.min_error, spec.max_error)}")
    return "; ".join(parts)


def _measured_text(row: Mapping[str, Any]) -> str:
    first = row.get("first_parting_step")
    if first is None:
        return (f"identical to {fmt(row.get('part_tolerance'))} over {row.get('steps')} steps "
                f"(largest relative difference {fmt(row.get('max_error'))})")
    per = row.get("first_parting_step_per_param") or {}
    parted = ", ".join(f"{p} at {s}" for p, s in per.items() if s is not None)
    return (f"first differ at step {first} (relative difference {fmt(row.get('error_at_parting'))} in "
            f"{row.get('parting_param')}); largest {fmt(row.get('max_error'))} at step {row.get('max_error_step')}; "
            f"parameters: {parted}")


def variant_claims(paper: str, prefix: str, specs: Iterable[VariantClaim]) -> list[Claim]:
    made = []
    for spec in specs:
        def check(quick: bool, spec: VariantClaim = spec) -> Outcome:
            return _variant_outcome(spec, variant_result(spec.key))

        family = "code" if spec.kind == "code-vs-paper" else spec.kind
        made.append(_register_spec(Claim(f"{prefix}.{family}.{spec.key}", paper, spec.where, spec.provenance,
                                         spec.statement, spec.kind, check), spec))
    return made


def gpu_state_claim(paper: str, prefix: str, algorithms: tuple[str, ...]) -> Claim:
    """The measured GPU optimizer state of ``algorithms`` equals their memory formula exactly."""

    def check(quick: bool) -> Outcome:
        data = load("memory/gpu_memory.json")
        rows = {r.get("algorithm"): r for r in data.get("results", [])}
        missing = [a for a in algorithms if a not in rows]
        if missing:
            raise MissingResult(f"no GPU measurement of {missing} in results/memory/gpu_memory.json")
        errors = {a: e for a, e in (data.get("errors") or {}).items() if a in algorithms}
        measured = {a: rows[a].get("state_measured_bytes") for a in algorithms}
        formula = {a: rows[a].get("state_formula_bytes") for a in algorithms}
        numbers = {"claimed": formula, "measured": measured, "device": data.get("meta", {}).get("device")}
        if errors:
            return Outcome("FAIL", f"failed on the GPU: {errors}", numbers)
        inexact = [a for a in algorithms if not rows[a].get("state_exact") or measured[a] != formula[a]]
        if inexact:
            return Outcome("FAIL", f"measured state differs from the formula for {inexact}", numbers)
        return Outcome("PASS", f"{', '.join(f'{a} {measured[a]:,} B' for a in algorithms)} on "
                       f"{numbers['device']}: measured == formula, byte for byte", numbers)

    names = " and ".join(algorithms)
    return register(Claim(f"{prefix}.memory.gpu-state-equals-formula", paper, "the state-size formula (optverify)",
                          "M", f"On a GPU, the optimizer state of {names} (LLaMA-60M shape, every paper's routing) "
                          "is exactly the memory formula: elements, bytes, dtype and device.", "memory", check))


# ----------------------------------------------------------------------------- claims not checked here
def not_checked(key: str, *, paper: str, where: str, provenance: str, statement: str, kind: str, why: str) -> Claim:
    """A headline claim the toolkit cannot check, listed with the reason (always INCONCLUSIVE)."""

    def check(quick: bool) -> Outcome:
        return Outcome("INCONCLUSIVE", f"not checked here: {why}")

    return register(Claim(key, paper, where, provenance, statement, kind, check))


def custom(key: str, *, paper: str, where: str, provenance: str, statement: str, kind: str,
           check: Callable[[bool], Outcome], figures: tuple[str, ...] = ()) -> Claim:
    return register(Claim(key, paper, where, provenance, statement, kind, check, figures))
