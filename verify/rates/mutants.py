r"""Planted-bug optimizers ("mutants") that the rate checks must FAIL.

Each mutant is a small subclass of a registered optimizer with one realistic bug. They are **not**
registered in :data:`algorithms.REGISTRY` (the contract battery would test them); a cell names one
as ``"mutant:<name>"`` and :func:`verify.rates.execute.run_cell` registers it only for its run.
``verify rates --mutant NAME`` runs the cells of the mutant's base algorithm with the mutant.

What a rate check can see: a bug that changes the **asymptotic** behaviour (a floor, no progress,
1/t steps, a lost variance-reduction term). A bug that only rescales the step by a constant (the
Subset-Norm accumulator's mean instead of its sum is the step size times √k; a frozen bias
correction is a constant factor) leaves every slope unchanged: it is the job of the oracle and
identity tests, and :data:`INVISIBLE` lists such bugs with the reason, so the limitation is explicit.
A bug can also be *faster* on a benign problem: AdaGrad without the square root takes 1/t steps, which
beat 1/√t on P1's locally strongly convex minimum, so only two-sided ("slope ≈ −1/2") claims catch it,
never an upper bound.

======================================  =====================================================================
mutant                                  planted bug
======================================  =====================================================================
``sgd_double_step``                     the update is applied twice (η = 1/L becomes 2/L: oscillation
                                        at the minimiser of P1, whose curvature there is exactly L)
``sgd_stale_gradient_sum``              the gradient buffer is never zeroed: the step uses Σ_{s≤t} g_s
``adagrad_norm_no_sqrt``                b_t accumulates Σ‖g‖² and the step divides by it, not by its
                                        square root (steps ∝ 1/t under noise)
``adagrad_coordinate_no_sqrt``          the same, per coordinate
``adagrad_subset_norm_no_sqrt``         the same, per subset
``adam_bias_correction_precedence``     ``(1 - beta)**t`` for ``1 - beta**t``: the step shrinks like
                                        0.316^t and the iterate freezes
``subspace_momentum_no_complement``     the SGD step in the orthogonal complement is dropped
``galore_full_rank``                    the rank argument is ignored (the full dimension is used)
``fira_no_residual``                    Fira's scaled residual is dropped (GaLore)
``ldadam_frozen_subspace``              the power-iteration result is discarded (the basis of step 1
                                        is kept; moments and error feedback as usual)
``ldadam_no_error_feedback``            the error-feedback buffer is dropped (``error_feedback=False``)
``adarankgrad_no_refresh``              the refresh triggers are never armed (first subspace forever)
``mars_exact_aliased``                  exact MARS whose previous-point gradient aliases the current
                                        one (h_t = g_t): the correction term vanishes
``adagrad_*_not_accumulated``           the new accumulator is computed but never stored, so
                                        b_t² = b0² + ‖g_t‖² (a constant-step method: a noise floor)
``adagrad_subset_norm_strided_subsets`` the partition is read with the wrong reshape order (strided subsets)
``adagrad_*_heavy_tailed_noise``        not an optimizer bug: the cells' noise becomes Student-t (df 3),
                                        violating the sub-gaussian premise of the δ-dependence check
``adarankgrad_full_rank``               the rank bound is dropped (every direction kept)
``<name>_frozen_after_first_step``      generic, for every registered algorithm (used by checks whose
                                        claims no specific bug breaks, e.g. σ = 0 slopes and the
                                        analogy-only claims): after step 1 the update is written to a
                                        stale copy, so the parameters never move again
======================================  =====================================================================
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import torch

import algorithms
from algorithms import fira_adamw as _fira_module
from algorithms import ldadam as _ldadam_module
from algorithms.subsets import divide_by_subsets, subset_sum_of_squares

__all__ = ["Mutant", "MUTANTS", "INVISIBLE", "mutants_of"]


@dataclass(frozen=True)
class Mutant:
    """A planted bug: an optimizer class (``cls``) or, with ``noise``, the cells' noise replaced by that family."""

    name: str
    base: str
    cls: type | None
    bug: str
    noise: str | None = None


@contextlib.contextmanager
def _patched(module: Any, name: str, replacement: Any) -> Iterator[None]:
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


# ----------------------------------------------------------------------------- SGD
SGD = algorithms.REGISTRY["sgd"]


class SgdDoubleStep(SGD):
    def _update_param(self, p, grad, state, group) -> None:
        super()._update_param(p, grad, state, group)
        super()._update_param(p, grad, state, group)


class SgdStaleGradientSum(SGD):
    def _update_param(self, p, grad, state, group) -> None:
        total = state.get("grad_sum")
        total = grad.clone() if total is None else total.add_(grad)
        state["grad_sum"] = total
        super()._update_param(p, total.clone(), state, group)


# ----------------------------------------------------------------------------- AdaGrad family
def _no_sqrt_update(opt, p, grad, state, group) -> None:
    """AdaGrad-(Subset-)Norm/Coordinate step dividing by b² = b0² + Σ‖g‖² instead of b."""
    state["step"] += 1
    layout = opt._layout(p, group)
    batch = group["batch_dims"]
    state["sum_sq"].add_(subset_sum_of_squares(grad, layout, batch))
    denom = state["sum_sq"] + opt.resolved(group, "eps")
    p.add_(divide_by_subsets(grad, denom, layout, batch), alpha=-float(group["lr"]))


def _not_accumulated_update(opt, p, grad, state, group) -> None:
    """AdaGrad step whose new accumulator b_t² = b_{t-1}² + ‖g_t‖² is computed but never stored (b_t² = b0² + ‖g_t‖²)."""
    state["step"] += 1
    layout = opt._layout(p, group)
    batch = group["batch_dims"]
    current = state["sum_sq"] + subset_sum_of_squares(grad, layout, batch)  # the bug: not written back
    denom = current.sqrt().add_(opt.resolved(group, "eps"))
    p.add_(divide_by_subsets(grad, denom, layout, batch), alpha=-float(group["lr"]))


class AdagradNormNoSqrt(algorithms.REGISTRY["adagrad_norm"]):
    def __init__(self, params, lr: float = 1e-2, **kwargs) -> None:
        kwargs["scope"] = "tensor"  # one accumulator per tensor: the same as "group" for a single parameter
        super().__init__(params, lr, **kwargs)

    def _update_param(self, p, grad, state, group) -> None:
        _no_sqrt_update(self, p, grad, state, group)


class AdagradCoordinateNoSqrt(algorithms.REGISTRY["adagrad_coordinate"]):
    def _update_param(self, p, grad, state, group) -> None:
        _no_sqrt_update(self, p, grad, state, group)


class AdagradSubsetNormNoSqrt(algorithms.REGISTRY["adagrad_subset_norm"]):
    def _update_param(self, p, grad, state, group) -> None:
        _no_sqrt_update(self, p, grad, state, group)


def _tensor_scope(cls: type) -> type:
    class TensorScope(cls):
        def __init__(self, params, lr: float = 1e-2, **kwargs) -> None:
            kwargs["scope"] = "tensor"
            super().__init__(params, lr, **kwargs)

    return TensorScope


class AdagradNormNotAccumulated(_tensor_scope(algorithms.REGISTRY["adagrad_norm"])):
    def _update_param(self, p, grad, state, group) -> None:
        _not_accumulated_update(self, p, grad, state, group)


class AdagradCoordinateNotAccumulated(algorithms.REGISTRY["adagrad_coordinate"]):
    def _update_param(self, p, grad, state, group) -> None:
        _not_accumulated_update(self, p, grad, state, group)


class AdagradSubsetNormNotAccumulated(algorithms.REGISTRY["adagrad_subset_norm"]):
    def _update_param(self, p, grad, state, group) -> None:
        _not_accumulated_update(self, p, grad, state, group)


class AdagradSubsetNormStridedSubsets(algorithms.REGISTRY["adagrad_subset_norm"]):
    """Subsets formed with the wrong reshape order: subset j = {j, j + d/k, j + 2d/k, ...} (strided, not contiguous)."""

    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        layout = self._layout(p, group)
        batch = group["batch_dims"]
        d = p.shape[-1]
        k = d // layout.state_shape[0] if p.dim() - batch == 1 and layout.state_shape else 1
        perm = torch.arange(d, device=p.device).reshape(k, d // k).T.reshape(-1)  # the bug: [k, d/k] read column-wise
        g = grad[..., perm]
        state["sum_sq"].add_(subset_sum_of_squares(g, layout, batch))
        denom = state["sum_sq"].sqrt().add_(self.resolved(group, "eps"))
        step = divide_by_subsets(g, denom, layout, batch)
        p[..., perm] = p[..., perm] - float(group["lr"]) * step


# ----------------------------------------------------------------------------- Adam
class AdamBiasCorrectionPrecedence(algorithms.REGISTRY["adam"]):
    def _update_param(self, p, grad, state, group) -> None:
        state["step"] += 1
        t = int(state["step"])
        beta1, beta2 = group["betas"]
        state["exp_avg"].lerp_(grad, 1 - beta1)
        state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        c1, c2 = (1 - beta1) ** t, (1 - beta2) ** t  # the bug: (1 - beta)**t instead of 1 - beta**t
        denom = (state["exp_avg_sq"].sqrt() / c2**0.5).add_(group["eps"])
        p.add_(state["exp_avg"] / denom / c1, alpha=-float(group["lr"]))


# ----------------------------------------------------------------------------- low-rank methods
class SubspaceMomentumNoComplement(algorithms.REGISTRY["subspace_momentum"]):
    def _subspace_parts(self, p, grad, state, group, beta1):
        lifted, orthogonal = super()._subspace_parts(p, grad, state, group, beta1)
        return lifted, torch.zeros_like(orthogonal)


class GaloreFullRank(algorithms.REGISTRY["galore_adamw"]):
    def _layout(self, p, group):
        side, _ = super()._layout(p, {**group, "rank": 1})
        m, n = p.shape[group["batch_dims"]:]
        return side, min(int(m), int(n))


class FiraNoResidual(algorithms.REGISTRY["fira_adamw"]):
    def _projected_step(self, p, grad, R, state, group, side: str) -> None:
        with _patched(_fira_module, "fira_residual", lambda G, lifted_R, alpha, form: torch.zeros_like(G)):
            super()._projected_step(p, grad, R, state, group, side)


class LdadamFrozenSubspace(algorithms.REGISTRY["ldadam"]):
    def _update_param(self, p, grad, state, group) -> None:
        keep = lambda b, basis_prev, *args, **kwargs: basis_prev.clone()  # noqa: E731 - the bug, in one line
        with _patched(_ldadam_module, "next_basis", keep):
            super()._update_param(p, grad, state, group)


class LdadamNoErrorFeedback(algorithms.REGISTRY["ldadam"]):
    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        kwargs["error_feedback"] = False
        super().__init__(params, lr, *args, **kwargs)


class AdarankgradNoRefresh(algorithms.REGISTRY["adarankgrad"]):
    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        kwargs["subspace_tol"] = None
        kwargs["max_steps_per_subspace"] = None
        super().__init__(params, lr, *args, **kwargs)


class AdarankgradFullRank(algorithms.REGISTRY["adarankgrad"]):
    def __init__(self, params, lr: float = 1e-3, *args, **kwargs) -> None:
        params = list(params)
        dims = [min(p.shape[-2:]) for p in params if isinstance(p, torch.Tensor) and p.dim() >= 2]
        kwargs["max_rank"] = max(1, min(dims)) if dims else kwargs.get("max_rank", 128)  # the bug: the bound is dropped
        kwargs["rank_threshold"] = 1.0  # ... and the rank rule keeps every direction
        super().__init__(params, lr, *args, **kwargs)


class MarsExactAliased(algorithms.REGISTRY["mars_adamw"]):
    def _previous_point_grad(self, p, grad, state, group, previous_point):
        return grad  # the gradient at x_(t-1) was aliased to the buffer that now holds g_t


# ----------------------------------------------------------------------------- generic
def frozen_after_first_step(base: type) -> type:
    """``base`` whose parameter updates after step 1 land on a stale copy (the parameters stop moving)."""

    class FrozenAfterFirstStep(base):
        def step(self, closure=None):
            params = [p for g in self.param_groups for p in g["params"]]
            started = any(int(self.state[p].get("step", 0)) >= 1 for p in params)
            saved = [p.detach().clone() for p in params] if started else None
            loss = super().step(closure)
            if saved is not None:
                with torch.no_grad():
                    for p, x in zip(params, saved):
                        p.copy_(x)
            return loss

    FrozenAfterFirstStep.__name__ = f"{base.__name__}FrozenAfterFirstStep"
    return FrozenAfterFirstStep


_SPECIFIC = [
    Mutant("sgd_double_step", "sgd", SgdDoubleStep, "the update is applied twice per step"),
    Mutant("sgd_stale_gradient_sum", "sgd", SgdStaleGradientSum, "the gradient buffer is never zeroed (Σ g_s)"),
    Mutant("adagrad_norm_no_sqrt", "adagrad_norm", AdagradNormNoSqrt, "divides by Σ‖g‖², not its square root"),
    Mutant("adagrad_coordinate_no_sqrt", "adagrad_coordinate", AdagradCoordinateNoSqrt,
           "divides by Σ g_i², not its square root"),
    Mutant("adagrad_subset_norm_no_sqrt", "adagrad_subset_norm", AdagradSubsetNormNoSqrt,
           "divides by Σ‖g_Ψ‖², not its square root"),
    Mutant("adagrad_norm_not_accumulated", "adagrad_norm", AdagradNormNotAccumulated,
           "the new accumulator is never stored (b_t² = b0² + ‖g_t‖²)"),
    Mutant("adagrad_coordinate_not_accumulated", "adagrad_coordinate", AdagradCoordinateNotAccumulated,
           "the new accumulator is never stored"),
    Mutant("adagrad_subset_norm_not_accumulated", "adagrad_subset_norm", AdagradSubsetNormNotAccumulated,
           "the new accumulator is never stored"),
    Mutant("adagrad_subset_norm_strided_subsets", "adagrad_subset_norm", AdagradSubsetNormStridedSubsets,
           "subsets read with the wrong reshape order (strided instead of contiguous)"),
    Mutant("adagrad_norm_heavy_tailed_noise", "adagrad_norm", None,
           "the noise is Student-t (df 3) though the check assumes sub-gaussian noise", noise="student_t"),
    Mutant("adagrad_subset_norm_heavy_tailed_noise", "adagrad_subset_norm", None,
           "the noise is Student-t (df 3) though the check assumes sub-gaussian noise", noise="student_t"),
    Mutant("adam_bias_correction_precedence", "adam", AdamBiasCorrectionPrecedence,
           "(1 - beta)**t instead of 1 - beta**t in the bias corrections"),
    Mutant("subspace_momentum_no_complement", "subspace_momentum", SubspaceMomentumNoComplement,
           "the SGD step in the orthogonal complement is dropped"),
    Mutant("galore_full_rank", "galore_adamw", GaloreFullRank, "the rank argument is ignored (full dimension)"),
    Mutant("fira_no_residual", "fira_adamw", FiraNoResidual, "the scaled residual is dropped"),
    Mutant("ldadam_frozen_subspace", "ldadam", LdadamFrozenSubspace, "the power-iteration result is discarded"),
    Mutant("ldadam_no_error_feedback", "ldadam", LdadamNoErrorFeedback, "the error-feedback buffer is dropped"),
    Mutant("adarankgrad_no_refresh", "adarankgrad", AdarankgradNoRefresh, "the refresh triggers are never armed"),
    Mutant("adarankgrad_full_rank", "adarankgrad", AdarankgradFullRank, "the rank bound is dropped (full rank)"),
    Mutant("mars_exact_aliased", "mars_adamw", MarsExactAliased, "h_t aliases g_t: the correction term vanishes"),
]
MUTANTS: dict[str, Mutant] = {m.name: m for m in _SPECIFIC}
for _base in sorted(algorithms.REGISTRY):
    _name = f"{_base}_frozen_after_first_step"
    MUTANTS[_name] = Mutant(_name, _base, frozen_after_first_step(algorithms.REGISTRY[_base]),
                            "after step 1 the update lands on a stale copy (no progress)")

#: bugs that no rate check can see, with the reason (they are covered by oracle/identity tests)
INVISIBLE: dict[str, str] = {
    "adagrad_subset_norm: mean instead of sum": "the mean is the sum / k, so the step is √k times larger: a constant "
    "step-size change, invisible to a slope (adaptive methods keep their exponent for any η)",
    "adam: bias correction frozen at t = 1": "a constant factor √(1−β2)/(1−β1) on the step: no slope changes",
}


def mutants_of(base: str) -> list[Mutant]:
    return [m for m in MUTANTS.values() if m.base == base]
