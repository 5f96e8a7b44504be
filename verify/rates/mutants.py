r"""Planted-bug optimizers ("mutants") that the rate checks must FAIL.

Each mutant is a small subclass of a registered optimizer with one realistic bug, declared with its
family in :mod:`verify.methods` (:func:`declare`). They are **not** registered in
:data:`algorithms.REGISTRY` (the contract battery would test them); a cell names one as
``"mutant:<name>"`` and :func:`verify.rates.execute.run_cell` runs the class directly.
``verify rates --mutant NAME`` runs the cells of the mutant's base algorithm with the mutant.

What a rate check can see: a bug that changes the **asymptotic** behaviour (a floor, no progress,
1/t steps, a lost variance-reduction term). A bug that only rescales the step by a constant (the
Subset-Norm accumulator's mean instead of its sum is the step size times √k; a frozen bias
correction is a constant factor) leaves every slope unchanged: it is the job of the oracle and
identity tests, and :data:`INVISIBLE` lists such bugs (:func:`declare_invisible`) with the reason, so the limitation is explicit.
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
``adam_decay_as_l2``, ``galore_scale_twice``, ``adarankgrad_rank_frozen``, ``mars_remembers_clipped``,
``adam_sn_heuristics_wrong_axis``       bugs on code paths no theorem covers (weight decay, α ≠ 1, an
                                        adaptive rank, a clip that fires, subset rules on matrices): no
                                        claim sees them; ``verify rates --regression`` does, on the
                                        ``code_paths`` cells (tests/verify/test_rates_regression.py)
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
from verify.methods import Registry

__all__ = ["Mutant", "MUTANTS", "INVISIBLE", "declare", "declare_invisible", "mutants_of", "patched",
           "frozen_after_first_step"]


@dataclass(frozen=True)
class Mutant:
    """A planted bug: an optimizer class (``cls``) or, with ``noise``, the cells' noise replaced by that family."""

    name: str
    base: str
    cls: type | None
    bug: str
    noise: str | None = None


@contextlib.contextmanager
def patched(module: Any, name: str, replacement: Any) -> Iterator[None]:
    """``module.name`` replaced by ``replacement`` while the block runs (a mutant's one-line bug)."""
    original = getattr(module, name)
    setattr(module, name, replacement)
    try:
        yield
    finally:
        setattr(module, name, original)


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


def _add_generic(registry: Registry[Mutant]) -> None:
    for base in sorted(algorithms.REGISTRY):
        name = f"{base}_frozen_after_first_step"
        registry.add(name, Mutant(name, base, frozen_after_first_step(algorithms.REGISTRY[base]),
                                  "after step 1 the update lands on a stale copy (no progress)"))


#: every planted bug: the specific ones of :mod:`verify.methods`, then a generic one per registered optimizer
MUTANTS: Registry[Mutant] = Registry("mutant", after_load=_add_generic)
#: bugs that no rate check can see, with the reason (they are covered by oracle/identity tests)
INVISIBLE: Registry[str] = Registry("invisible bug")


def declare(*mutants: Mutant) -> tuple[Mutant, ...]:
    """Add a family's planted bugs to :data:`MUTANTS` (in :mod:`verify.methods`)."""
    for mutant in mutants:
        MUTANTS.add(mutant.name, mutant)
    return mutants


def declare_invisible(bug: str, reason: str) -> None:
    """Record a bug no rate check can see, and why (it is left to the oracle and identity tests)."""
    INVISIBLE.add(bug, reason)


def mutants_of(base: str) -> list[Mutant]:
    return [m for m in MUTANTS.values() if m.base == base]
