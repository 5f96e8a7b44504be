r"""Machinery shared by MARS-AdamW, MARS-Lion and MARS-Shampoo (Yuan et al., "MARS: Unleashing the
Power of Variance Reduction for Training Large Models", ICML 2025, arXiv 2411.10438v4).

Every MARS method builds the same *scaled variance-reduced gradient* (Algorithm 1, line 4)

.. math::

   \begin{aligned}
   &c_t = g_t + \gamma_t \frac{\beta_{1,t}}{1-\beta_{1,t}} \bigl(g_t - h_t\bigr),
     \qquad g_t = \nabla f(x_t, \xi_t) \\
   &\tilde c_t = \begin{cases} \tau\, c_t / \lVert c_t \rVert_2 & \lVert c_t \rVert_2 > \tau \\
                                c_t & \text{otherwise} \end{cases}
     \qquad (\tau = 1 \text{ in the paper and the code}) \\
   &m_t = \beta_{1,t}\, m_{t-1} + (1-\beta_{1,t})\, \tilde c_t
   \end{aligned}

and then differs only in the preconditioner :math:`H_t` applied to :math:`m_t`. :func:`mars_step` is
Algorithm 1 as a function on lists of tensors (batched over leading independent-problem dimensions),
line for line: the correction, the clip, the moment, the preconditioned step (each method passes its
:math:`H_t`: AdamW, Lion, Shampoo, or the identity). :class:`MarsOptimizerBase` keeps what is not in
the box: the estimators of :math:`h_t` (and the closures and look-ahead gradients they need), the
schedules, the routing to the AdamW fallback, and the state.

Estimators (``estimator=``)
---------------------------
What :math:`h_t` is:

``"approx"`` (MARS-approx, Remark 3.3; the paper's recommendation and the code's default)
    :math:`h_t = g_{t-1} = \nabla f(x_{t-1}, \xi_{t-1})`, the previous step's gradient. The
    optimizer **copies** it into ``state["prev_grad"]``; it never keeps a reference to ``p.grad``
    (the authors' code does, so an in-place ``zero_grad(set_to_none=False)`` silently turns it into
    AdamW on clipped gradients; docs/methods.md §2.6). One extra buffer per parameter.
``"exact"`` (MARS-exact, Algorithm 1 as written)
    :math:`h_t = \nabla f(x_{t-1}, \xi_t)`: the gradient on the *current* sample at the previous
    iterate. ``step(closure)`` is required. The closure must recompute the loss and the gradients
    **on the current, fixed minibatch** at whatever parameters are loaded, and return the loss.
    At :math:`t \ge 2` the optimizer loads the stored :math:`x_{t-1}` into every parameter that has
    one, calls the closure (gradients :math:`h_t`), restores :math:`x_t` bit-exactly, calls the
    closure again (gradients :math:`g_t`, left in ``p.grad``; the returned loss is at :math:`x_t`),
    updates, and stores :math:`x_t` as ``state["x_prev"]``. ``p.grad`` is set to ``None`` before
    each call, so a closure that forgets ``zero_grad`` still gets fresh gradients.

    *Randomness.* Both evaluations must see the same sample **and the same randomness** (dropout
    masks, stochastic depth). With ``replay_rng=True`` (default) the optimizer saves torch's global
    CPU generator state (and every CUDA device's, when CUDA is initialised) before the first call
    and restores it before the second, so masks drawn from torch's global generators are identical
    and the net RNG consumption equals one evaluation. Anything else is the caller's job: draw the
    minibatch *outside* the closure; seed any numpy/python randomness inside it; note that
    BatchNorm running statistics are updated by both calls (use eval-mode statistics or accept it).
    The update needs :math:`x_{t-1}` for *every* parameter that moves (so the previous point is the
    whole model's previous iterate), including those on the AdamW fallback: state ``x_prev``.
``"exact_lookahead"`` (the authors' training script, ``train_mars.py`` with ``is_approx=False``)
    The caller supplies :math:`\nabla f(x_t, \xi_{t+1})`, the gradient on the **next** minibatch at
    the current point, *before* stepping: put it in ``p.grad`` and call
    :meth:`MarsOptimizerBase.store_lookahead_grads`, then compute :math:`g_t` on the current
    minibatch and call ``step()``. Step :math:`t+1` then uses it as :math:`h_{t+1}`. One persistent
    buffer (``prev_grad``) plus the pending one between the two calls. A step at :math:`t \ge 2`
    whose :math:`h_t` was never stored raises ``RuntimeError`` before changing anything (the last
    step of a run needs no look-ahead gradient).

First step (``first_step=``)
----------------------------
``"paper"``: :math:`x_1 = x_0`, so the correction vanishes and :math:`c_1 = g_1` (Algorithm 1).
``"official"``: the code's ``last_grad`` starts at zero, so :math:`c_1 = (1+k)\,g_1`,
:math:`k = \gamma\beta_1/(1-\beta_1)` (1.475·g₁ at the defaults). In the exact estimator neither
rule evaluates the closure twice at :math:`t = 1`.

Clipping (``clip=``, ``clip_threshold=``)
-----------------------------------------
``"tensor"``: each parameter tensor's :math:`c_t` separately (the code); ``"global"``: the norm
over every MARS-routed tensor of the parameter group (Algorithms 1–3 write the norm of the whole
vector); ``"none"``: off (Algorithm 4 does not clip). Norms never cross ``batch_dims``. The
comparison is strict (:math:`\lVert c\rVert > \tau`) and the division is :math:`c/(\lVert c\rVert/\tau)`,
as in the code. ``state["clip_count"]`` (int64, shape = the batch shape) counts the steps at which
clipping fired for that tensor (in ``"global"`` mode a firing counts for every tensor of the
group); :meth:`MarsOptimizerBase.clip_statistics` sums them.

Schedules
---------
``gamma`` and each β may be a number or a callable ``t -> value`` evaluated at the parameter's
1-based step ``t`` (the theory needs :math:`\beta_{1,t+1} = 1 - c\,\eta_t^2`, :math:`\gamma_t`
schedules; Theorems B.5/B.6). The callable is kept on the optimizer, and the parameter group holds
the marker ``"schedule"`` so that ``state_dict()`` stays plain data: construct the resumed optimizer
with the same callables. Values are validated at every evaluation. With a scheduled β the
AdamW-rule bias correction :math:`1-\beta^t` is meaningless, so ``bias_correction=True`` is
rejected there (Theorem B.6's :math:`H_t` has no bias correction). The learning rate follows a
schedule through the usual torch LR schedulers; ``LambdaLR`` receives the number of *completed*
steps, so :math:`\eta_t = \eta(t)` is ``LambdaLR(opt, lambda e: eta(e + 1))`` with ``lr=1``.

Routing (``optimize_1d=``, ``routing=``)
----------------------------------------
A parameter gets the MARS rule when ``optimize_1d`` is True, or when its problem shape (after
``batch_dims``) is a matrix under ``routing``:

``"official"``  exactly 2-D (the code's ``grad.ndim == 2``): LayerNorm gains, biases *and conv
                kernels* (3-D/4-D) take the AdamW fallback.
``"ours"``      2-D or more: conv kernels use MARS (MARS-Shampoo reshapes them to
                :math:`d_0 \times \prod_{i>0} d_i`); only 0-D/1-D take the fallback. This matches
                pytorch-optimizer's port and the paper's intent that MARS-Shampoo acts on matrices.

The **AdamW fallback** is ``torch.optim.AdamW`` on the raw gradient (:func:`algorithms.adam.adam_update`,
torch ε placement, decay before the step) with ``betas_1d``, ``weight_decay_1d`` and the learning
rate :math:`\mathrm{lr}_{1d}\cdot \mathrm{lr}_t/\mathrm{lr}_0`, so it tracks LR schedulers as the
code does (``lr_1d_factor``). Deviation: the code fixes :math:`\mathrm{lr}_0` to the *constructor's*
``lr`` for every group; we use each group's own initial lr (kept in ``group["lr_initial"]``), so a
parameter group behaves exactly like a separate optimizer. ``weight_decay_1d`` (0.1 by default, as
in the code) applies even in groups whose ``weight_decay`` is 0; set it per group to change that.
"""

from __future__ import annotations

import math
from typing import Any, Callable, ClassVar, Iterable

import torch

from ._base import ReferenceOptimizer, all_finite
from .distributed import full_for
from ._foreach import advance_steps, buckets, pick
from .validation import check_beta, check_bool, check_choice, check_nonnegative, check_positive
from .adam import adam_update, adam_update_foreach
from .grouping import Routing

__all__ = [
    "VARIANTS",
    "ESTIMATORS",
    "FIRST_STEP_RULES",
    "CLIP_MODES",
    "ROUTING_RULES",
    "SCHEDULED",
    "correction_scale",
    "variance_reduced_gradient",
    "problem_shape",
    "problem_sq_norm",
    "problem_norm",
    "clip_divisor",
    "clip_tensorwise",
    "clip_globally",
    "is_matrix",
    "uses_mars_rule",
    "matrix_view_shape",
    "fallback_lr",
    "adamw_fallback_update",
    "remember_gradient",
    "clip_corrections",
    "StepHyper",
    "mars_step",
    "mars_step_foreach",
    "clip_corrections_foreach",
    "MarsOptimizerBase",
]

VARIANTS = ("paper", "official")
ESTIMATORS = ("approx", "exact", "exact_lookahead")
FIRST_STEP_RULES = ("paper", "official")
CLIP_MODES = ("tensor", "global", "none")
ROUTING_RULES = ("official", "ours")
#: the value a parameter group holds in place of a schedule (the callable lives on the optimizer)
SCHEDULED = "schedule"


# ----------------------------------------------------------------------------- the estimator c_t
def correction_scale(gamma: float, beta1: float) -> float:
    """:math:`k = \\gamma\\beta_1/(1-\\beta_1)`, the weight of the gradient difference in :math:`c_t`."""
    return gamma * beta1 / (1.0 - beta1)


def variance_reduced_gradient(grad: torch.Tensor, prev_point_grad: torch.Tensor, *, gamma: float, beta1: float) -> torch.Tensor:
    """:math:`c_t = g_t + k\\,(g_t - h_t)` as a new tensor (Algorithm 1, line 4)."""
    return torch.sub(grad, prev_point_grad).mul_(correction_scale(gamma, beta1)).add_(grad)


def remember_gradient(state: dict[str, Any], grad: torch.Tensor) -> None:
    """Approx estimator: keep a *copy* of this step's gradient as next step's :math:`h`."""
    state["prev_grad"].copy_(grad)


# ----------------------------------------------------------------------------- clipping
def _problem_dims(t: torch.Tensor, batch_dims: int) -> tuple[int, ...]:
    return tuple(range(batch_dims, t.dim()))


def problem_sq_norm(t: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """Squared Euclidean norm of each independent problem (shape = the batch shape)."""
    dims = _problem_dims(t, batch_dims)
    if not dims:  # 0-D problems; note that ``sum(dim=())`` would reduce everything
        return t.square()
    return t.square().sum(dim=dims)


def problem_norm(t: torch.Tensor, batch_dims: int) -> torch.Tensor:
    """Euclidean norm of each independent problem (shape = the batch shape)."""
    dims = _problem_dims(t, batch_dims)
    if not dims:
        return t.abs()
    return torch.linalg.vector_norm(t, dim=dims)


def clip_divisor(norm: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(divisor, fired)``: divide :math:`c` by ``‖c‖/τ`` where ``‖c‖ > τ`` and by 1 elsewhere."""
    fired = norm > threshold
    divisor = torch.where(fired, norm / threshold, torch.ones_like(norm))
    return divisor, fired


def _divide_problems(c: torch.Tensor, divisor: torch.Tensor, batch_dims: int) -> None:
    c.div_(divisor.reshape(divisor.shape + (1,) * (c.dim() - batch_dims)))


def clip_tensorwise(cs: list[torch.Tensor], threshold: float, batch_dims: int) -> list[torch.Tensor]:
    """Clip each tensor's :math:`c_t` in place to norm ``threshold``; returns the per-problem ``fired`` masks."""
    fired_masks = []
    for c in cs:
        divisor, fired = clip_divisor(problem_norm(c, batch_dims), threshold)
        _divide_problems(c, divisor, batch_dims)
        fired_masks.append(fired)
    return fired_masks


def clip_globally(cs: list[torch.Tensor], threshold: float, batch_dims: int) -> list[torch.Tensor]:
    """Clip the concatenation of ``cs`` (per independent problem) in place; returns one mask per tensor."""
    if not cs:
        return []
    batch_shapes = {tuple(c.shape[:batch_dims]) for c in cs}
    if len(batch_shapes) > 1:
        raise ValueError(
            f"clip='global' with batch_dims={batch_dims} needs every parameter of the group to share "
            f"its leading batch shape, got {sorted(batch_shapes)}"
        )
    total = problem_sq_norm(cs[0], batch_dims)
    for c in cs[1:]:
        total = total + problem_sq_norm(c, batch_dims)
    divisor, fired = clip_divisor(total.sqrt(), threshold)
    for c in cs:
        _divide_problems(c, divisor, batch_dims)
    return [fired] * len(cs)


def clip_corrections(cs: list[torch.Tensor], mode: str, threshold: float, batch_dims: int) -> list[torch.Tensor]:
    """Clip the :math:`c_t` of ``cs`` in place under ``mode`` (``"tensor"``, ``"global"``, ``"none"``); returns
    the per-problem masks of where clipping fired (empty for ``"none"``)."""
    if mode == "none" or not cs:
        return []
    if mode == "tensor":
        return clip_tensorwise(cs, threshold, batch_dims)
    return clip_globally(cs, threshold, batch_dims)


def clip_corrections_foreach(cs: list[torch.Tensor], mode: str, threshold: float, batch_dims: int) -> list[torch.Tensor]:
    """:func:`clip_corrections` with multi-tensor ops. Without batch dims the norms come from one
    ``torch._foreach_norm`` (the global norm as the norm of the per-tensor norms), which differs from the
    reference's sums of squares by round-off only; with batch dims the per-problem norms are the reference's."""
    if mode == "none" or not cs:
        return []
    if batch_dims == 0:
        norms = torch.stack(torch._foreach_norm(cs, 2))
        if mode == "global":
            norms = torch.linalg.vector_norm(norms).unsqueeze(0)
        divisors, fired = clip_divisor(norms, threshold)
        if mode == "global":
            torch._foreach_div_(cs, divisors[0])
            return [fired[0]] * len(cs)
        torch._foreach_div_(cs, list(divisors.unbind()))
        return list(fired.unbind())
    if mode == "tensor":
        return clip_tensorwise(cs, threshold, batch_dims)
    return clip_globally(cs, threshold, batch_dims)


# ----------------------------------------------------------------------------- routing
def problem_shape(p: torch.Tensor, group: dict[str, Any]) -> torch.Size:
    return p.shape[group["batch_dims"]:]


def is_matrix(p: torch.Tensor, group: dict[str, Any]) -> bool:
    """Is ``p`` a matrix under the group's ``routing`` rule (see module docstring)?"""
    ndim = len(problem_shape(p, group))
    return ndim == 2 if group["routing"] == "official" else ndim >= 2


def uses_mars_rule(p: torch.Tensor, group: dict[str, Any]) -> bool:
    """True when ``p`` gets the MARS update; False for the AdamW fallback."""
    return bool(group["optimize_1d"]) or is_matrix(p, group)


def matrix_view_shape(p: torch.Tensor, group: dict[str, Any]) -> tuple[int, ...]:
    """The shape ``(*batch, d0, prod(rest))`` under which a matrix-routed tensor is treated as a matrix."""
    b = group["batch_dims"]
    shape = p.shape
    return (*shape[:b], shape[b], math.prod(shape[b + 1:]))


def fallback_lr(group: dict[str, Any]) -> float:
    """:math:`\\mathrm{lr}_{1d}\\cdot\\mathrm{lr}_t/\\mathrm{lr}_0` (tracks LR schedulers, as the code's ``lr_1d_factor``)."""
    return float(group["lr"]) * (group["lr_1d"] / group["lr_initial"])


def adamw_fallback_update(p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
    """The official rule for non-MARS parameters: torch AdamW with ``betas_1d``/``weight_decay_1d``/scaled ``lr_1d``."""
    beta1, beta2 = group["betas_1d"]
    adam_update(
        p,
        grad,
        state["exp_avg"],
        state["exp_avg_sq"],
        int(state["step"]),
        lr=fallback_lr(group),
        beta1=beta1,
        beta2=beta2,
        eps=group["eps"],
        weight_decay=group["weight_decay_1d"],
        decoupled_weight_decay=True,
        eps_placement="torch",
        weight_decay_timing="before",
        bias_correction=True,
    )


# ----------------------------------------------------------------------------- global RNG replay
def _global_rng_state() -> tuple[torch.Tensor, list[torch.Tensor] | None]:
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return torch.get_rng_state(), cuda


def _restore_global_rng(saved: tuple[torch.Tensor, list[torch.Tensor] | None]) -> None:
    cpu, cuda = saved
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state_all(cuda)


class StepHyper:
    """This step's resolved (possibly scheduled) hyperparameters for one parameter: η_t, β_{1,t}, β_{2,t}, γ_t, t."""

    __slots__ = ("lr", "beta1", "beta2", "gamma", "step")

    def __init__(self, lr: float, beta1: float, beta2: float | None, gamma: float, step: int) -> None:
        self.lr, self.beta1, self.beta2, self.gamma, self.step = lr, beta1, beta2, gamma, step


# ----------------------------------------------------------------------------- Algorithm 1
def _count_clips(counts: list[torch.Tensor], fired: list[torch.Tensor]) -> None:
    """Add the masks to the counters; the masks die here, before any update (the step's memory peak)."""
    for count, mask in zip(counts, fired):
        count.add_(mask.to(torch.int64))


def mars_step(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    prev_point_grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    hypers: list[StepHyper],
    *,
    clip: str,
    clip_threshold: float,
    batch_dims: int,
    precondition: Callable[[torch.Tensor, torch.Tensor, StepHyper], None],
    clip_counts: list[torch.Tensor] | None = None,
) -> None:
    r"""One step of MARS (Algorithm 1) on the tensors ``params``, in place.

    ``grads`` are :math:`g_t = \nabla f(x_t, \xi_t)`, ``prev_point_grads`` the estimator's :math:`h_t`
    (:meth:`MarsOptimizerBase._previous_point_grad`), ``exp_avgs`` the first moments :math:`m_{t-1}`
    (updated in place to :math:`m_t`). ``precondition(param, c_tilde, hyper)`` is the method's step with
    its :math:`H_t` (line 7), reading :math:`m_t`: AdamW (Algorithm 2), Lion (Algorithm 3), Shampoo
    (Algorithm 4) or :math:`H_t = I`. The tensors are clipped together (``clip="global"``) or one by one;
    ``clip_counts`` (int64, one per tensor, the batch shape) count the problems where clipping fired.
    """
    # line 4: the scaled variance-reduced gradient c_t = g_t + γ_t β_{1,t}/(1 − β_{1,t}) (g_t − h_t)
    cs = [variance_reduced_gradient(g, h, gamma=hp.gamma, beta1=hp.beta1)
          for g, h, hp in zip(grads, prev_point_grads, hypers)]
    # line 5: c̃_t = c_t / max(1, ‖c_t‖/τ)
    _count_clips(clip_counts or [], clip_corrections(cs, clip, clip_threshold, batch_dims))
    for param, c, m, hp in zip(params, cs, exp_avgs, hypers):
        # line 6: m_t = β_{1,t} m_{t−1} + (1 − β_{1,t}) c̃_t
        m.lerp_(c, 1 - hp.beta1)
        # line 7: x_{t+1} = argmin_x η_t ⟨m_t, x⟩ + ½‖x − x_t‖²_{H_t}
        precondition(param, c, hp)


def mars_step_foreach(
    params: list[torch.Tensor],
    grads: list[torch.Tensor],
    prev_point_grads: list[torch.Tensor],
    exp_avgs: list[torch.Tensor],
    hypers: list[StepHyper],
    *,
    clip: str,
    clip_threshold: float,
    batch_dims: int,
    precondition: Callable[[list[torch.Tensor], list[torch.Tensor], list[int], StepHyper], None],
    clip_counts: list[torch.Tensor] | None = None,
) -> None:
    r""":func:`mars_step` with multi-tensor ops, one call per bucket of tensors that share a device, a dtype and
    a step (so :math:`\gamma_t, \beta_{1,t}` are one number per bucket). ``precondition(params, c_tildes,
    positions, hyper)`` is line 7 on a bucket (``positions`` index the input lists). Every :math:`c_t` is
    alive at once (one parameter-sized transient, as ``clip="global"`` needs anyway); the clip norms are
    those of :func:`clip_corrections_foreach`."""
    steps = [hp.step for hp in hypers]
    groups = buckets(params, steps)
    # line 4: the scaled variance-reduced gradient c_t = g_t + γ_t β_{1,t}/(1 − β_{1,t}) (g_t − h_t)
    cs: list[torch.Tensor] = [grads[0]] * len(params)
    for idx in groups:
        hp = hypers[idx[0]]
        bucket_grads = pick(grads, idx)
        corrections = torch._foreach_sub(bucket_grads, pick(prev_point_grads, idx))
        torch._foreach_mul_(corrections, correction_scale(hp.gamma, hp.beta1))
        torch._foreach_add_(corrections, bucket_grads)
        for i, c in zip(idx, corrections):
            cs[i] = c
    # line 5: c̃_t = c_t / max(1, ‖c_t‖/τ)
    fired = clip_corrections_foreach(cs, clip, clip_threshold, batch_dims)
    if clip_counts and fired:
        torch._foreach_add_(clip_counts, [mask.to(torch.int64) for mask in fired])
    for idx in groups:
        hp = hypers[idx[0]]
        bucket_cs = pick(cs, idx)
        # line 6: m_t = β_{1,t} m_{t−1} + (1 − β_{1,t}) c̃_t
        torch._foreach_lerp_(pick(exp_avgs, idx), bucket_cs, 1 - hp.beta1)
        # line 7: the preconditioned step
        precondition(pick(params, idx), bucket_cs, idx, hp)


# ----------------------------------------------------------------------------- the optimizer base
class MarsOptimizerBase(ReferenceOptimizer):
    """The optimizer around :func:`mars_step`: estimators (:math:`h_t`, the closures of the exact estimator,
    the look-ahead gradients), schedules, routing to the AdamW fallback and state. Subclasses implement
    :meth:`_mars_buffers` and :meth:`_precondition` (line 7 of Algorithm 1 with their :math:`H_t`).

    ``beta_fields`` lists the schedulable β's as ``(name, group key, index or None)``.
    """

    variants: ClassVar[tuple[str, ...]] = VARIANTS
    #: the authors' training code routes inside the optimizer: exactly-2-D tensors MARS (the embedding and
    #: lm_head included), everything else the AdamW fallback (``optimize_1d=False``, ``routing="official"``)
    paper_routing = Routing("single", method={"optimize_1d": False},
                            source="MARS training code: 2-D tensors MARS, the rest AdamW, inside the optimizer")
    beta_fields: ClassVar[tuple[tuple[str, str, int | None], ...]] = (("beta1", "betas", 0), ("beta2", "betas", 1))

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any], *, seed: int, nonfinite: str, batch_dims: int,
                 fast: bool | str = False) -> None:
        self._schedules: dict[int, dict[str, Callable[[int], float]]] = {}
        super().__init__(params, defaults, seed=seed, nonfinite=nonfinite, batch_dims=batch_dims, fast=fast)
        self._uniform_setting("estimator")

    # ------------------------------------------------------------------ subclass hooks
    def _mars_buffers(self, p: torch.Tensor, group: dict[str, Any]) -> tuple[str, ...]:
        """State buffers (zeros like ``p``) the MARS rule needs for ``p``."""
        raise NotImplementedError

    def _precondition(self, p: torch.Tensor, c: torch.Tensor, state: dict[str, Any], group: dict[str, Any],
                      hp: StepHyper) -> None:
        """The method's step with its :math:`H_t`, given :math:`m_t` (``state["exp_avg"]``, already updated) and the
        clipped :math:`\\tilde c_t` (``state["step"]`` already incremented)."""
        raise NotImplementedError

    def _precondition_foreach(self, params: list[torch.Tensor], cs: list[torch.Tensor], states: list[dict[str, Any]],
                              group: dict[str, Any], hp: StepHyper) -> None:
        """:meth:`_precondition` on a bucket of tensors that share a device, a dtype and a step (the fast path)."""
        raise NotImplementedError

    def _validate_specific(self, group: dict[str, Any]) -> None:
        """Validate the subclass's own hyperparameters."""

    def _uses_bias_correction(self, group: dict[str, Any]) -> bool:
        """Whether any parameter of ``group`` may take a bias-corrected (AdamW-rule) step."""
        return False

    def __getstate__(self) -> dict[str, Any]:  # keep the schedules through copy.deepcopy / pickling
        state = super().__getstate__()
        state["_schedules"] = self._schedules
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        schedules = state.pop("_schedules", None)
        super().__setstate__(state)
        if schedules is not None or not hasattr(self, "_schedules"):
            self._schedules = schedules or {}

    # ------------------------------------------------------------------ validation and schedules
    def _group_position(self, group: dict[str, Any]) -> int | None:
        for i, g in enumerate(self.param_groups):
            if g is group:
                return i
        return None

    def _take_schedule(self, group: dict[str, Any], name: str, value: Any) -> Any:
        """Move a callable out of the group into the schedule table; return what the group keeps."""
        if not callable(value):
            return value
        position = self._group_position(group)
        if position is None:
            raise TypeError(f"{name}: a schedule (callable) can only be given at construction")
        self._schedules.setdefault(position, {})[name] = value
        return SCHEDULED

    def _validate_group(self, group: dict[str, Any]) -> None:
        check_nonnegative("lr", group["lr"])
        group["gamma"] = self._take_schedule(group, "gamma", group["gamma"])
        if group["gamma"] != SCHEDULED:
            check_nonnegative("gamma", group["gamma"])
        for name, key, index in self.beta_fields:
            if index is None:
                group[key] = self._take_schedule(group, name, group[key])
                if group[key] != SCHEDULED:
                    check_beta(key, group[key])
                continue
            pair = group[key]
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{key} must be a pair ({key}[0], {key}[1]), got {pair!r}")
            pair = list(pair)
            pair[index] = self._take_schedule(group, name, pair[index])
            if pair[index] != SCHEDULED:
                check_beta(f"{key}[{index}]", pair[index])
            group[key] = tuple(pair)
        check_nonnegative("eps", group["eps"])
        check_nonnegative("weight_decay", group["weight_decay"])
        check_choice("estimator", group["estimator"], ESTIMATORS)
        check_choice("first_step", group["first_step"], FIRST_STEP_RULES)
        check_choice("clip", group["clip"], CLIP_MODES)
        check_positive("clip_threshold", group["clip_threshold"])
        check_bool("optimize_1d", group["optimize_1d"])
        check_choice("routing", group["routing"], ROUTING_RULES)
        check_nonnegative("lr_1d", group["lr_1d"])
        betas_1d = group["betas_1d"]
        if not isinstance(betas_1d, (tuple, list)) or len(betas_1d) != 2:
            raise TypeError(f"betas_1d must be a pair (beta1, beta2), got {betas_1d!r}")
        check_beta("betas_1d[0]", betas_1d[0])
        check_beta("betas_1d[1]", betas_1d[1])
        group["betas_1d"] = tuple(betas_1d)
        check_nonnegative("weight_decay_1d", group["weight_decay_1d"])
        check_bool("bias_correction", group["bias_correction"])
        check_bool("replay_rng", group["replay_rng"])
        check_choice("variant", group["variant"], self.variants)
        if "lr_initial" not in group:
            group["lr_initial"] = float(group["lr"])
        check_nonnegative("lr_initial", group["lr_initial"])
        if not group["optimize_1d"] and group["lr_initial"] == 0:
            raise ValueError(
                "lr_1d: the AdamW fallback's lr is lr_1d·lr_t/lr_0, which needs lr > 0 at construction "
                "(or optimize_1d=True)"
            )
        if group["bias_correction"] and self._uses_bias_correction(group) and self._has_scheduled_beta(group):
            raise ValueError(
                "bias_correction: 1 - beta**t assumes a constant beta; pass bias_correction=False with "
                "scheduled betas (Theorem B.6's preconditioner has no bias correction)"
            )
        self._validate_specific(group)

    def _has_scheduled_beta(self, group: dict[str, Any]) -> bool:
        for _, key, index in self.beta_fields:
            value = group[key] if index is None else group[key][index]
            if value == SCHEDULED:
                return True
        return False

    def _uniform_setting(self, key: str) -> Any:
        values = {g[key] for g in self.param_groups}
        if len(values) > 1:
            raise ValueError(f"{key} must be the same in every parameter group (the protocol is per step), got {sorted(values)}")
        return next(iter(values))

    def _scheduled_value(self, position: int, name: str, raw: Any, step: int, check: Callable[[str, Any], float]) -> float:
        if raw != SCHEDULED:
            return float(raw)
        schedule = self._schedules.get(position, {}).get(name)
        if schedule is None:
            raise RuntimeError(
                f"{name}: parameter group {position} holds a schedule (e.g. from a checkpoint) but this optimizer "
                "was constructed without one; pass the same callable again"
            )
        return check(f"{name} schedule at step {step}", schedule(step))

    def _hyperparameters(self, position: int, group: dict[str, Any], step: int) -> StepHyper:
        betas: dict[str, float | None] = {"beta1": None, "beta2": None}
        for name, key, index in self.beta_fields:
            raw = group[key] if index is None else group[key][index]
            betas[name] = self._scheduled_value(position, name, raw, step, check_beta)
        gamma = self._scheduled_value(position, "gamma", group["gamma"], step, check_nonnegative)
        return StepHyper(float(group["lr"]), betas["beta1"], betas["beta2"], gamma, step)

    # ------------------------------------------------------------------ the step
    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        try:
            return self._mars_step(closure)
        finally:
            self._restore_skipped()  # gradients hidden by nonfinite="skip" come back

    def _mars_step(self, closure: Callable[[], Any] | None) -> Any:
        estimator = self._uniform_setting("estimator")
        previous_point = None
        if estimator == "exact":
            if closure is None:
                raise TypeError(
                    "closure: estimator='exact' evaluates the gradient at x_t and x_{t-1} on the same minibatch "
                    "and needs step(closure); see the algorithms.mars docstring"
                )
            loss, previous_point, current = self._evaluate_at_two_points(closure)
        else:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            self._screen_gradients()
            if estimator == "exact_lookahead":
                self._check_lookahead_available()
        # resolve every schedule first, so that a bad scheduled value raises before any state changes
        resolved = [self._resolve_group(position, group) for position, group in enumerate(self.param_groups)]
        if estimator == "exact":
            self._store_previous_points(current, previous_point)
        for group, hyper in zip(self.param_groups, resolved):
            if self._uses_fast_path(group):
                self._step_group_fast(group, hyper, previous_point)
            else:
                self._step_mars_group(group, hyper, previous_point)
        return loss

    def _resolve_group(self, position: int, group: dict[str, Any]) -> dict[torch.Tensor, StepHyper]:
        """This step's hyperparameters for every MARS-routed parameter of ``group`` that has a gradient."""
        hyper = {}
        for p in group["params"]:
            if p.grad is not None and uses_mars_rule(p, group):
                state = self.state[p]
                step = int(state["step"]) + 1 if "step" in state else 1
                hyper[p] = self._hyperparameters(position, group, step)
        return hyper

    def _all_params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _call_closure(self, closure: Callable[[], Any]) -> Any:
        for p in self._all_params():
            p.grad = None
        with torch.enable_grad():
            return closure()

    def _evaluate_at_two_points(self, closure: Callable[[], Any]) -> tuple[Any, dict, dict]:
        """Exact estimator: gradients at x_{t-1} (then restored) and at x_t, all on the closure's minibatch.

        Returns the loss at x_t, ``{p: h_t}`` for every parameter that has a stored x_{t-1} (``None``
        when the closure gave it no gradient there) and ``{p: copy of x_t}`` for those parameters.
        No optimizer state changes here.
        """
        movers = [p for p in self._all_params() if "x_prev" in self.state[p]]
        current = {p: p.detach().clone() for p in movers}
        previous_point: dict[torch.Tensor, torch.Tensor | None] = {}
        if movers:
            saved_rng = _global_rng_state() if self._uniform_setting("replay_rng") else None
            try:
                for p in movers:
                    p.copy_(self.state[p]["x_prev"])
                self._call_closure(closure)
                for p in movers:
                    previous_point[p] = None if p.grad is None else p.grad.detach().clone()
            finally:
                for p in movers:
                    p.copy_(current[p])
                if saved_rng is not None:
                    _restore_global_rng(saved_rng)
        loss = self._call_closure(closure)
        self._screen_gradients()
        self._screen_previous_point(previous_point)
        return loss, previous_point, current

    def _store_previous_points(self, current: dict, previous_point: dict) -> None:
        """x_{t-1} <- x_t for the next step (parameters skipped this step keep their unchanged value)."""
        for p, x in current.items():
            self.state[p]["x_prev"] = x
        for p in self._all_params():
            if p.grad is not None and p not in previous_point:
                self.state[p]["x_prev"] = p.detach().clone()

    def _screen_previous_point(self, previous_point: dict[torch.Tensor, torch.Tensor | None]) -> None:
        cls = type(self).__name__
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                if p.grad is None or p not in previous_point or not uses_mars_rule(p, group):
                    continue
                h = previous_point[p]
                label = self._param_label(gi, pi)
                if h is None:
                    raise RuntimeError(
                        f"{cls}: the closure gave {label} a gradient at x_t but none at x_(t-1); "
                        "estimator='exact' needs both"
                    )
                if h.is_sparse or h.layout != torch.strided:
                    raise TypeError(f"{cls} does not support sparse gradients: {label} (at x_(t-1))")
                if group["nonfinite"] != "ignore" and not all_finite([h])[0]:
                    if group["nonfinite"] == "raise":
                        self._raise_nonfinite(gi, pi, where=" at x_(t-1)")
                    self._skip_nonfinite(gi, pi, p, where=" at x_(t-1)")

    def _check_lookahead_available(self) -> None:
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                state = self.state[p]
                if p.grad is None or not uses_mars_rule(p, group) or "step" not in state:
                    continue
                if int(state["step"]) >= 1 and "prev_grad" not in state:
                    raise RuntimeError(
                        f"{type(self).__name__}: estimator='exact_lookahead' but no look-ahead gradient "
                        f"∇f(x_(t-1), ξ_t) was stored for {self._param_label(gi, pi)} before the previous step; "
                        "call store_lookahead_grads() before every step() except the last"
                    )

    @torch.no_grad()
    def store_lookahead_grads(self) -> None:
        """``estimator="exact_lookahead"``: copy ``p.grad`` = :math:`\\nabla f(x_t, \\xi_{t+1})` for the next step.

        Call it with the next minibatch's gradients at the *current* parameters, before computing the
        current gradients and calling ``step()`` (the authors' ``update_previous_grad``).
        """
        if self._uniform_setting("estimator") != "exact_lookahead":
            raise RuntimeError("store_lookahead_grads() is only for estimator='exact_lookahead'")
        self._screen_gradients(can_skip=False)  # a stored look-ahead gradient has no step to skip
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None and uses_mars_rule(p, group):
                    self.state[p]["lookahead_grad"] = p.grad.detach().clone()

    def _step_mars_group(self, group: dict[str, Any], hyper: dict[torch.Tensor, StepHyper], previous_point: dict | None) -> None:
        streaming = self._streams_corrections(group)
        pending = []
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = p.grad
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.int64)
            state["step"] += 1
            if not uses_mars_rule(p, group):
                self._ensure_buffers(p, state, ("exp_avg", "exp_avg_sq"))
                adamw_fallback_update(p, grad, state, group)
                continue
            self._ensure_buffers(p, state, self._mars_buffers(p, group))
            if "clip_count" not in state:
                state["clip_count"] = full_for(p, p.shape[: group["batch_dims"]], 0, torch.int64)
            pending.append((p, grad, state, hyper[p], self._previous_point_grad(p, grad, state, group, previous_point)))
            if streaming:
                self._apply_mars_step(group, pending)
                pending.clear()
        self._apply_mars_step(group, pending)

    def _step_group_fast(self, group: dict[str, Any], hyper: dict[torch.Tensor, StepHyper],
                              previous_point: dict | None) -> None:
        """:meth:`_step_mars_group` on the fast path: the AdamW fallback and :func:`mars_step_foreach` per bucket."""
        params, grads, states = self._active_params(group)
        steps = advance_steps(states)
        dense = [i for i, p in enumerate(params) if not uses_mars_rule(p, group)]
        routed = [i for i, p in enumerate(params) if uses_mars_rule(p, group)]
        for i in dense:
            self._ensure_buffers(params[i], states[i], ("exp_avg", "exp_avg_sq"))
        beta1, beta2 = group["betas_1d"]
        for bucket in buckets(pick(params, dense), pick(steps, dense)):
            idx = pick(dense, bucket)
            self._kernel(adam_update_foreach)(
                pick(params, idx), pick(grads, idx), [states[i]["exp_avg"] for i in idx],
                [states[i]["exp_avg_sq"] for i in idx], steps[idx[0]], lr=fallback_lr(group), beta1=beta1, beta2=beta2,
                eps=group["eps"], weight_decay=group["weight_decay_1d"], decoupled_weight_decay=True,
                eps_placement="torch", weight_decay_timing="before", bias_correction=True,
            )
        if not routed:
            return
        params, grads, states = pick(params, routed), pick(grads, routed), pick(states, routed)
        hs = []
        for p, grad, state in zip(params, grads, states):
            self._ensure_buffers(p, state, self._mars_buffers(p, group))
            if "clip_count" not in state:
                state["clip_count"] = full_for(p, p.shape[: group["batch_dims"]], 0, torch.int64)
            hs.append(self._previous_point_grad(p, grad, state, group, previous_point))
        mars_step_foreach(
            params, grads, hs, [state["exp_avg"] for state in states], [hyper[p] for p in params], clip=group["clip"],
            clip_threshold=float(group["clip_threshold"]), batch_dims=group["batch_dims"],
            precondition=lambda ps, cs, idx, hp: self._precondition_foreach(ps, cs, pick(states, idx), group, hp),
            clip_counts=[state["clip_count"] for state in states],
        )
        if group["estimator"] == "approx":
            torch._foreach_copy_([state["prev_grad"] for state in states], grads)
        else:
            for grad, state in zip(grads, states):
                self._after_update(grad, state, group)

    @staticmethod
    def _streams_corrections(group: dict[str, Any]) -> bool:
        """Only the global clip norm needs every :math:`c_t` before the first update; otherwise each parameter
        is finished before the next :math:`c_t` exists, so one is alive at a time (verify/memory/formulas.py)."""
        return group["clip"] != "global"

    def _apply_mars_step(self, group: dict[str, Any], pending: list) -> None:
        if not pending:
            return
        params, grads, states, hypers, hs = (list(column) for column in zip(*pending))
        mars_step(
            params, grads, hs, [state["exp_avg"] for state in states], hypers, clip=group["clip"],
            clip_threshold=float(group["clip_threshold"]), batch_dims=group["batch_dims"],
            precondition=lambda p, c, hp: self._precondition(p, c, self.state[p], group, hp),
            clip_counts=[state["clip_count"] for state in states],
        )
        for grad, state in zip(grads, states):
            self._after_update(grad, state, group)

    def _init_state(self, p: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Nothing beyond ``step``: the buffers depend on the parameter's route and the estimator, and are made
        when a step first needs them (:meth:`_ensure_buffers`)."""

    @staticmethod
    def _ensure_buffers(p: torch.Tensor, state: dict[str, Any], names: Iterable[str]) -> None:
        for name in names:
            if name not in state:
                state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)

    def _previous_point_grad(self, p, grad, state, group, previous_point) -> torch.Tensor:
        """:math:`h_t` for this estimator; at the first step, :math:`g_1` (paper) or 0 (official)."""
        estimator = group["estimator"]
        if estimator == "approx":
            first = "prev_grad" not in state
            self._ensure_buffers(p, state, ("prev_grad",))
            if first and group["first_step"] == "paper":
                return grad
            return state["prev_grad"]
        if estimator == "exact":
            h = previous_point.get(p) if previous_point is not None else None
            if h is not None:
                return h
        elif "prev_grad" in state:  # exact_lookahead
            return state["prev_grad"]
        return grad if group["first_step"] == "paper" else torch.zeros_like(grad)

    def _after_update(self, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        estimator = group["estimator"]
        if estimator == "approx":
            remember_gradient(state, grad)
        elif estimator == "exact_lookahead":
            if "lookahead_grad" in state:
                state["prev_grad"] = state.pop("lookahead_grad")
            else:
                state.pop("prev_grad", None)

    # ------------------------------------------------------------------ diagnostics
    def clip_statistics(self) -> dict[str, float]:
        """``{"fired": …, "decisions": …, "rate": …}`` summed over every MARS-routed tensor and problem.

        ``decisions`` counts (tensor, problem, step) triples; with ``clip="none"`` nothing fires.
        """
        fired = decisions = 0
        for group in self.param_groups:
            for p in group["params"]:
                state = self.state[p]
                if "clip_count" in state:
                    fired += int(state["clip_count"].sum())
                    decisions += int(state["step"]) * state["clip_count"].numel()
        return {"fired": fired, "decisions": decisions, "rate": fired / decisions if decisions else 0.0}
