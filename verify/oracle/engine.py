"""The comparison loop shared by :func:`compare` (a live float64 reference) and
:func:`verify.oracle.trace.check_trace` (a recorded one).

At every step both sides receive the same gradients; after the step the candidate's parameters (and
the state tensors named in ``state_map``) are compared with the reference's by the relative error
``max|a − b| / max|b|``. A step fails when

* a candidate value is NaN or ±Inf (whatever the reference holds: a verification never passes a
  non-finite value, and ``NaN > rtol`` is False, so this is checked first),
* a mapped state tensor has a different shape on the two sides,
* ``candidate.step()`` raises, or
* the relative error exceeds ``rtol``.

A mapped state key that one side has and the other lacks, or that no parameter has on both sides,
is an input error naming the keys each side does have: comparing nothing never passes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

from .errors import OracleInputError
from .report import PARAMS, Failure, OracleReport

__all__ = ["relative_error", "run_comparison", "state_tensor_keys"]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """``max|a − b| / max|b|`` in float64 (0 for empty tensors; the scale floored at 1e-300).

    NaN when ``a`` holds NaN: callers that decide a verdict check finiteness first."""
    if a.numel() == 0:
        return 0.0
    a = a.detach().to(torch.float64)
    b = b.detach().to(device=a.device, dtype=torch.float64)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _as_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return torch.tensor(float(value), dtype=torch.float64)
    return None


def state_tensor_keys(state: dict[str, Any]) -> list[str]:
    """The keys of a parameter's state holding a tensor or a number (what can be compared)."""
    return sorted(k for k, v in state.items() if _as_tensor(v) is not None)


def _nonfinite_reason(t: torch.Tensor) -> str | None:
    if t.is_floating_point() or t.is_complex():
        finite = torch.isfinite(t)
        if not bool(finite.all()):
            nan = int(torch.isnan(t).sum())
            return (f"candidate holds {nan} NaN and {t.numel() - int(finite.sum()) - nan} Inf values "
                    f"(non-finite values never pass)")
    return None


class ReferenceSide:
    """What the loop needs from the reference (live optimizer or trace)."""

    def step(self, step: int, grads: Sequence[torch.Tensor]) -> None:
        raise NotImplementedError

    def values(self, step: int) -> list[torch.Tensor] | None:
        """Parameters after ``step`` (None when this step is not compared)."""
        raise NotImplementedError

    def state(self, step: int, index: int) -> dict[str, Any]:
        raise NotImplementedError


def _check_state_map(state_map: dict[str, str], ref: ReferenceSide, cand_opt: Any, cand_params, step: int,
                     names: Sequence[str]) -> None:
    for rkey, ckey in state_map.items():
        both = False
        for i, name in enumerate(names):
            r_state, c_state = ref.state(step, i), cand_opt.state.get(cand_params[i], {})
            r_has, c_has = _as_tensor(r_state.get(rkey)) is not None, _as_tensor(c_state.get(ckey)) is not None
            if r_has != c_has:
                have, lack, key = ("reference", "candidate", ckey) if r_has else ("candidate", "reference", rkey)
                raise OracleInputError(
                    f"state map {rkey}={ckey}: after step {step} the {have} has it for {name} but the {lack} has no "
                    f"{key!r}; reference keys: {state_tensor_keys(r_state)}, candidate keys: {state_tensor_keys(c_state)}"
                )
            both = both or r_has
        if not both:
            r_keys = sorted({k for i in range(len(names)) for k in state_tensor_keys(ref.state(step, i))})
            c_keys = sorted({k for p in cand_params for k in state_tensor_keys(cand_opt.state.get(p, {}))})
            raise OracleInputError(
                f"state map {rkey}={ckey}: no parameter has {rkey!r} in the reference and {ckey!r} in the candidate "
                f"after step {step}; reference keys: {r_keys}, candidate keys: {c_keys}"
            )


def run_comparison(
    report: OracleReport,
    *,
    ref: ReferenceSide,
    cand_opt: Any,
    cand_params: Sequence[torch.Tensor],
    next_gradients: Callable[[int], tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]]],
    steps: int,
    state_map: dict[str, str],
) -> OracleReport:
    """Step both sides ``steps`` times and fill ``report`` (series, first failure)."""
    names = report.param_names
    rtol = report.rtol
    report.series = {PARAMS: {n: [] for n in names}, **{f"state[{k}]": {n: [] for n in names} for k in state_map}}
    checked_map = False

    def fail(step, quantity, i, error, reason):
        if report.failure is None:
            report.failure = Failure(step, quantity, i, None if i is None else names[i],
                                     None if i is None else tuple(report.shapes[i]), error, rtol, reason)

    for step in range(1, steps + 1):
        ref_grads, cand_grads = next_gradients(step)
        ref.step(step, ref_grads)
        for p, g in zip(cand_params, cand_grads):
            p.grad = g.detach().clone()
        try:
            cand_opt.step()
        except Exception as exc:  # the candidate's own code: a crash is a failure at this step
            report.compared_steps.append(step)
            for per in report.series.values():
                for n in names:
                    per[n].append(None)
            fail(step, "step()", None, None, f"candidate.step() raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            return report
        ref_values = ref.values(step)
        if ref_values is None:
            continue
        report.compared_steps.append(step)
        for i, (c, r) in enumerate(zip(cand_params, ref_values)):
            reason = _nonfinite_reason(c.detach())
            if reason is None and tuple(c.shape) != tuple(r.shape):
                reason = f"shape mismatch: candidate {tuple(c.shape)}, reference {tuple(r.shape)}"
            err = None if reason else relative_error(c, r)
            report.series[PARAMS][names[i]].append(err)
            if reason:
                fail(step, PARAMS, i, None, reason)
            elif err > rtol:
                fail(step, PARAMS, i, err, f"rel err {err:.3e} > rtol {rtol:g}")
        if state_map and not checked_map:
            _check_state_map(state_map, ref, cand_opt, cand_params, step, names)
            checked_map = True
        for rkey, ckey in state_map.items():
            quantity = f"state[{rkey}]"
            for i, name in enumerate(names):
                r_state, c_state = ref.state(step, i), cand_opt.state.get(cand_params[i], {})
                rv, cv = _as_tensor(r_state.get(rkey)), _as_tensor(c_state.get(ckey))
                if rv is None and cv is None:
                    continue
                if (rv is None) != (cv is None):
                    have = "reference" if rv is not None else "candidate"
                    raise OracleInputError(
                        f"state map {rkey}={ckey}: at step {step} only the {have} has it for {name}; reference keys: "
                        f"{state_tensor_keys(r_state)}, candidate keys: {state_tensor_keys(c_state)}")
                reason = _nonfinite_reason(cv.detach())
                if reason is None and tuple(cv.shape) != tuple(rv.shape):
                    reason = f"shape mismatch: candidate {ckey!r} {tuple(cv.shape)}, reference {rkey!r} {tuple(rv.shape)}"
                err = None if reason else relative_error(cv, rv)
                report.series[quantity][name].append(err)
                if reason:
                    fail(step, quantity, i, None, reason)
                elif err > rtol:
                    fail(step, quantity, i, err, f"rel err {err:.3e} > rtol {rtol:g}")
    # parameters without a mapped state key on either side carry no series for it
    for quantity, per in list(report.series.items()):
        if quantity != PARAMS:
            report.series[quantity] = {n: s for n, s in per.items() if s}
    return report
