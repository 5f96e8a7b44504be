r"""Gradient streams the oracle feeds to both optimizers.

``"lowrank"`` (default, open loop)
    Numerically low-rank matrices with a decaying spectrum, the shape of real LLM gradients and
    what the projected methods are built for. A matrix parameter (a 3-D tensor is viewed as
    ``shape[0] × rest``) gets

    .. math:: G_t = a_t\, U_t \operatorname{diag}(s_t \circ \sigma_t) V_t^\top,
       \qquad \sigma_{t,i} \propto \max(\rho_t^{\,i},\ 0.02 \cdot 0.9^{\,i}),\ \|\sigma_t\|_2 = 1,

    with random signs :math:`s_t`, bases :math:`U_t, V_t` that wobble around a base pair each step
    and jump to a fresh random pair every ``JUMP_PERIOD`` steps (subspace changes), a decay
    :math:`\rho_t` that sweeps ``DECAY_RANGE`` with period ``DECAY_PERIOD`` (so the energy rank,
    AdaRankGrad's adaptive rank, moves between 2 and 6: 6 at step 1, 2 at step 201), and an
    amplitude :math:`a_t = 3^{\sin(2\pi (t-1)/24)}` that rises and falls by up to a third per step
    (so Fira's norm-growth limiter binds on the way up, MARS's clip at norm 1 binds above 1 and not
    below). The tail floor keeps every singular value distinct and non-zero: a projection of rank
    larger than the head sees small, well-separated directions instead of round-off (which Adam
    would normalise into O(1) noise). Vectors and scalars get a Gaussian with fixed per-coordinate
    scales and the same amplitude :math:`a_t` (norm :math:`a_t`).

``"loss"`` (closed loop)
    The gradient of a non-convex loss at each optimizer's own iterate, as in training (errors can
    compound). Per matrix, :math:`f_t(W) = c\,a_t \sum_{ij} \log(1 + \tfrac12 [X_t (W - W^\star)]_{ij}^2)`
    with a symmetric metric :math:`X_t = U_t \operatorname{diag}(\sigma_t) U_t^\top` from the same
    spectrum and amplitude schedules, so the gradients are again low rank with a decaying spectrum
    and their norms rise and fall (limiters and clipping bind). Vectors: the same loss with a
    diagonal metric. Candidate gradients are computed in the candidate's dtype.

``"random"`` (open loop)
    i.i.d. standard normal entries: full rank, constant scale. Kept for compatibility; it misses
    the paths above (it never makes a rank adapt, and its flat spectrum hides subspace errors).

Open-loop gradients are drawn in float64; the candidate receives them rounded to its dtype and the
reference the rounded values, so rounding of the *input* is not counted against the candidate.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from algorithms import param_seed

from .errors import OracleInputError
from .problem import numel

__all__ = ["GRADIENT_KINDS", "OPEN_LOOP", "GradientStream", "amplitude", "decay_rate", "singular_values"]

GRADIENT_KINDS = ("lowrank", "loss", "random")
OPEN_LOOP = ("lowrank", "random")

AMPLITUDE_SPAN = 3.0  # the norm sweeps [1/3, 3] ...
AMPLITUDE_PERIOD = 24  # ... with this period: up to +32% per step on the way up
DECAY_RANGE = (0.35, 0.75)  # rho_t: energy rank 2 at 0.35, 6 at 0.75 (96% of ||G||_F^2)
DECAY_PERIOD = 80  # rho is at its top at step 1 and at its bottom at step 201
TAIL = (0.02, 0.9)  # the floor 0.02 * 0.9^i under rho^i
WOBBLE = 0.1  # relative per-step perturbation of the bases
JUMP_PERIOD = 37  # fresh random bases every 37 steps (not a multiple of any refresh period)
LOSS_SCALE = 0.5  # c: puts the loss gradients' norms around 1 at the start


def amplitude(step: int, period: int = AMPLITUDE_PERIOD) -> float:
    """:math:`a_t = 3^{\\sin(2\\pi (t-1)/P)}` (P = 24 by default)."""
    return AMPLITUDE_SPAN ** math.sin(2 * math.pi * (step - 1) / period)


def decay_rate(step: int, period: int = DECAY_PERIOD) -> float:
    """:math:`\\rho_t`, from ``DECAY_RANGE[1]`` at step 1 down to ``DECAY_RANGE[0]`` half a period later."""
    lo, hi = DECAY_RANGE
    return (lo + hi) / 2 + (hi - lo) / 2 * math.cos(2 * math.pi * (step - 1) / period)


def singular_values(step: int, k: int, period: int = DECAY_PERIOD) -> torch.Tensor:
    """The unit-norm spectrum :math:`\\sigma_t` of length ``k`` (float64, strictly decreasing)."""
    i = torch.arange(k, dtype=torch.float64)
    head = decay_rate(step, period) ** i
    tail = TAIL[0] * TAIL[1] ** i
    s = torch.maximum(head, tail)
    return s / s.norm()


def _matrix_view(shape: tuple[int, ...]) -> tuple[int, int] | None:
    if len(shape) < 2:
        return None
    return shape[0], numel(shape[1:])


def _orthonormal(a: torch.Tensor) -> torch.Tensor:
    q, r = torch.linalg.qr(a)
    return q * torch.where(r.diagonal() < 0, -1.0, 1.0)  # unique: positive diagonal of R


class GradientStream:
    """The per-step gradients (open loop) or loss data (closed loop) of one oracle run.

    Deterministic in ``seed``: two streams with the same kind, shapes, seed and periods draw identical
    values. Steps must be requested in order 1, 2, 3, ... (the random state advances with them).
    ``periods`` overrides the schedules' periods (keys ``amplitude``, ``decay``, ``jump``), e.g. for
    a short trace whose refreshes come every few steps.
    """

    def __init__(self, kind: str, shapes: Sequence[tuple[int, ...]], seed: int,
                 periods: dict[str, int] | None = None) -> None:
        if kind not in GRADIENT_KINDS:
            raise OracleInputError(f"gradients: unknown stream {kind!r}; valid: {', '.join(GRADIENT_KINDS)}")
        self.periods = {"amplitude": AMPLITUDE_PERIOD, "decay": DECAY_PERIOD, "jump": JUMP_PERIOD, **(periods or {})}
        if set(self.periods) != {"amplitude", "decay", "jump"} or not all(
                isinstance(v, int) and v >= 1 for v in self.periods.values()):
            raise OracleInputError(f"gradient periods: expected positive ints for amplitude, decay, jump; got {periods}")
        self.kind = kind
        self.shapes = [tuple(s) for s in shapes]
        self.gen = torch.Generator().manual_seed(param_seed(seed, 1))
        self.next_step = 1
        self._bases: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.shapes)
        self._scales = [self._randn(s).mul_(0.5).exp_() for s in self.shapes]  # per-coordinate scales
        self._targets = [self._randn(s) for s in self.shapes]  # W* of the loss stream

    @property
    def closed_loop(self) -> bool:
        return self.kind == "loss"

    def _randn(self, *shape) -> torch.Tensor:
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], tuple) else shape
        return torch.randn(shape, generator=self.gen, dtype=torch.float64)

    def _advance(self, step: int) -> None:
        if step != self.next_step:
            raise RuntimeError(f"gradient stream: step {step} requested, expected {self.next_step}")
        self.next_step += 1

    # ------------------------------------------------------------------ open loop
    def gradients(self, step: int) -> list[torch.Tensor]:
        """The float64 gradients of step ``step`` (open-loop kinds only)."""
        if self.closed_loop:
            raise RuntimeError("the loss stream has no fixed gradients; use loss_data() and loss_gradients()")
        self._advance(step)
        if self.kind == "random":
            return [self._randn(s) for s in self.shapes]
        return [self._lowrank(i, s, step) for i, s in enumerate(self.shapes)]

    def _frame(self, i: int, m: int, n: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's bases ``U [m, μ]``, ``V [n, μ]``: the base pair (re-drawn every JUMP_PERIOD steps), wobbled."""
        mu = min(m, n)
        if (step - 1) % self.periods["jump"] == 0 or self._bases[i] is None:
            self._bases[i] = (_orthonormal(self._randn(m, mu)), _orthonormal(self._randn(n, mu)))
        U, V = self._bases[i]
        U = _orthonormal(U + self._randn(m, mu) * (WOBBLE / math.sqrt(m)))
        V = _orthonormal(V + self._randn(n, mu) * (WOBBLE / math.sqrt(n)))
        return U, V

    def _lowrank(self, i: int, shape: tuple[int, ...], step: int) -> torch.Tensor:
        mat = _matrix_view(shape)
        amp = amplitude(step, self.periods["amplitude"])
        if mat is None:
            z = self._randn(shape) * self._scales[i]
            return z * (amp / z.norm().clamp_min(1e-300)) if z.numel() > 1 else z * amp
        m, n = mat
        U, V = self._frame(i, m, n, step)
        signs = torch.where(self._randn(min(m, n)) < 0, -1.0, 1.0)
        sigma = singular_values(step, min(m, n), self.periods["decay"]) * signs * amp
        return ((U * sigma) @ V.T).reshape(shape)

    # ------------------------------------------------------------------ closed loop
    def loss_data(self, step: int) -> tuple[float, list[torch.Tensor]]:
        """Step ``step``'s amplitude :math:`a_t` and float64 metric per parameter (``X_t [m, m]`` for
        matrices, the diagonal ``[shape]`` otherwise)."""
        if not self.closed_loop:
            raise RuntimeError("loss_data() belongs to the loss stream")
        self._advance(step)
        metrics = []
        for i, shape in enumerate(self.shapes):
            mat = _matrix_view(shape)
            if mat is None:
                metrics.append(self._scales[i])
                continue
            m, _ = mat
            U, _ = self._frame(i, m, m, step)
            metrics.append((U * singular_values(step, m, self.periods["decay"])) @ U.T)
        return amplitude(step, self.periods["amplitude"]), metrics

    def loss_gradients(self, data: tuple[float, Sequence[torch.Tensor]], params: Sequence[torch.Tensor],
                       dtype: torch.dtype) -> list[torch.Tensor]:
        """:math:`\\nabla f_t` at ``params``, computed in ``dtype`` from the step's :meth:`loss_data`."""
        amp, metrics = data
        grads = []
        for i, (x, p) in enumerate(zip(metrics, params)):
            w = p.detach().to(dtype)
            target = self._targets[i].to(device=w.device, dtype=dtype)
            x = x.to(device=w.device, dtype=dtype)
            mat = _matrix_view(self.shapes[i])
            if mat is None:
                g = x * _psi(x * (w - target))
            else:
                g = (x @ _psi(x @ (w - target).reshape(mat))).reshape(self.shapes[i])
            grads.append(g * (LOSS_SCALE * amp))
        return grads


def _psi(r: torch.Tensor) -> torch.Tensor:
    """d/dr log(1 + r²/2) = r / (1 + r²/2)."""
    return r / (1 + 0.5 * r * r)
