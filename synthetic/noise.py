r"""Gradient noise with known sub-gaussian constants (docs/problems.md §4).

An oracle returns :math:`g(x, \xi) = \nabla f(x) + \xi` with fresh noise at every step, drawn from the seed's
counter-based stream (:class:`synthetic.rng.SeedStreams`), so the noise of seed ``s`` at step ``t`` is the
same whether the seed runs alone or in a batch.

**Additive noise** (:class:`AdditiveNoise`): :math:`\xi_i = s_i z_i` with a per-coordinate scale vector
:math:`s` (:math:`s_i` is the **standard deviation**, so :math:`E\|\xi\|^2 = \|s\|^2 / b`) and :math:`z` from

============== ======================================= ===================================================
distribution   :math:`z`                               sub-gaussian :math:`\sigma` (batch size :math:`b = 1`)
============== ======================================= ===================================================
``gaussian``   :math:`N(0, 1)`                         :math:`c_G\, s`, :math:`c_G = \sqrt{2/(1 - e^{-2})} \approx 1.5209` (tight)
``rademacher`` :math:`\pm 1`                           :math:`s` (tight: :math:`E e^{\xi^2/s^2} = e` exactly)
``uniform``    :math:`U[-\sqrt3, \sqrt3]` (bounded)    the bound :math:`\sqrt3\, s` (valid; the smallest is ≈ 0.666·bound)
``student_t``  :math:`t_\nu\sqrt{(\nu-2)/\nu}`, ν ≥ 3  none: **not sub-gaussian** (:class:`NotSubGaussianError`)
============== ======================================= ===================================================

**The definition** (our reading of the SN assumption [U], docs/problems.md §4): :math:`\xi_i` is sub-gaussian with parameter
:math:`\sigma_i` when :math:`E\exp(\xi_i^2/\sigma_i^2) \le e`. Derivations [D]:

* bounded, :math:`|\xi_i| \le B_i`: :math:`E e^{\xi_i^2/B_i^2} \le e^1`, so :math:`\sigma_i = B_i`;
* Rademacher :math:`\pm s`: :math:`\xi^2 = s^2` always, so :math:`\sigma = s` with equality;
* Gaussian :math:`N(0, s^2)`: :math:`E e^{\xi^2/\sigma^2} = (1 - 2s^2/\sigma^2)^{-1/2} \le e \iff \sigma \ge c_G s`;
* a **variance proxy** :math:`\nu^2` (:math:`E e^{\lambda\xi} \le e^{\lambda^2\nu^2/2}` for all λ) gives
  :math:`E e^{\xi^2/\sigma^2} = E_\xi E_g e^{\sqrt{2}\,g\,\xi/\sigma} \le E_g e^{g^2\nu^2/\sigma^2} = (1 - 2\nu^2/\sigma^2)^{-1/2}`
  (:math:`g \sim N(0,1)` independent), so :math:`\sigma = c_G \nu` works. Rademacher has proxy :math:`s^2`
  (:math:`\cosh x \le e^{x^2/2}`) and :math:`U[-B, B]` has proxy :math:`B^2/3 = s^2`
  (:math:`\sinh x / x \le e^{x^2/6}`, termwise since :math:`(2k+1)! \ge 6^k k!`).

**Batch size** ``b``: the noise is the mean of ``b`` independent draws, which divides the variance by
``b``. For ``gaussian`` the mean is drawn directly as :math:`s z/\sqrt b` (equal in law); for the others the
``b`` draws are averaged. The mean of ``b`` independent proxies :math:`\nu^2` has proxy :math:`\nu^2/b`, so
:math:`\sigma = c_G s/\sqrt b` (Gaussian: tight) and, for the bounded ones, :math:`\sigma = \min(B, c_G s/\sqrt b)`.

**Sparsity profile** (:func:`sparse_scale`, E3): a scale vector that is non-zero on :math:`\lceil d^\beta\rceil` coordinates.

**Multiplicative noise** (:class:`MultiplicativeNoise`): :math:`\xi = z \odot x` (the iterate; the
:math:`(H + \operatorname{diag} z)\,x` model of MARS experiment A) or :math:`z \odot \nabla f(x)`, with :math:`z_i` of
standard deviation :math:`\tau_i`. Its scale depends on the state, so it has no constant :math:`\sigma`
(:meth:`MultiplicativeNoise.sigma` raises; :meth:`MultiplicativeNoise.sigma_at` gives the conditional one).

Noises add up with :class:`SumNoise` (each model draws from its own channel).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch

from algorithms.validation import check_choice, check_int, check_unit_interval

__all__ = [
    "NotSubGaussianError",
    "DISTRIBUTIONS",
    "GAUSSIAN_SIGMA_FACTOR",
    "NoiseModel",
    "AdditiveNoise",
    "MultiplicativeNoise",
    "SumNoise",
    "sparse_scale",
    "sparse_support_size",
]

DISTRIBUTIONS = ("gaussian", "rademacher", "uniform", "student_t")
#: :math:`c_G = \sqrt{2/(1 - e^{-2})}`: the smallest σ/s for Gaussian noise
GAUSSIAN_SIGMA_FACTOR = math.sqrt(2.0 / (1.0 - math.exp(-2.0)))
_SQRT3 = math.sqrt(3.0)


class NotSubGaussianError(ValueError):
    """Raised when a noise without a (constant) sub-gaussian parameter is asked for one."""


def _as_scale(name: str, value: Any) -> torch.Tensor:
    """A finite, non-negative float64 tensor from a number, a sequence or a tensor."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a tensor, got bool")
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise TypeError(f"{name} must be real, got a complex tensor")
        t = value.detach().to(torch.float64).clone()
    elif isinstance(value, numbers.Real):
        t = torch.tensor(float(value), dtype=torch.float64)
    elif isinstance(value, (list, tuple)):
        try:
            t = torch.tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} must be a sequence of numbers") from None
    else:
        raise TypeError(f"{name} must be a number or a tensor, got {type(value).__name__}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be finite")
    if t.numel() and not bool((t >= 0).all()):
        raise ValueError(f"{name} must be >= 0 (a standard deviation), got minimum {float(t.min())}")
    return t


def _draw(streams, step: int, channel: str, distribution: str, shape: tuple[int, ...], dtype: torch.dtype,
          df: int | None) -> torch.Tensor:
    """One draw of :math:`z` with unit variance, ``[S, *shape]``."""
    if distribution == "gaussian":
        return streams.normal(step, channel, shape, dtype)
    if distribution == "rademacher":
        return streams.rademacher(step, channel, shape, dtype)
    if distribution == "uniform":
        return (2.0 * streams.uniform(step, channel, shape, dtype) - 1.0) * _SQRT3
    z = streams.normal(step, channel + ".z", shape, dtype)
    chi2 = streams.chi_square(step, channel + ".chi2", shape, df, dtype)
    return z * torch.sqrt((df - 2) / chi2)  # t_df * sqrt((df-2)/df): unit variance


def _draw_mean(streams, step: int, channel: str, distribution: str, shape, dtype, df, batch_size: int) -> torch.Tensor:
    """The mean of ``batch_size`` independent unit-variance draws (Gaussian: drawn directly)."""
    if distribution == "gaussian" or batch_size == 1:
        z = _draw(streams, step, channel, distribution, shape, dtype, df)
        return z if batch_size == 1 else z / math.sqrt(batch_size)
    total = None
    for j in range(batch_size):  # a fixed order of additions: the same for every row and batch size
        z = _draw(streams, step, f"{channel}#{j}", distribution, shape, dtype, df)
        total = z if total is None else total + z
    return total / batch_size


class NoiseModel:
    """Base class: :meth:`sample` returns the noise to add to the gradient, ``[S, *shape]``."""

    channel: str = "noise"

    def sample(self, streams, step: int, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def check_shape(self, shape: Sequence[int]) -> None:
        """Raise ``ValueError`` if the noise cannot act on parameters of this (per-seed) shape."""

    def sigma(self, shape: Sequence[int] | None = None) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError


def _broadcast(name: str, t: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    try:
        return torch.broadcast_to(t, tuple(shape))
    except RuntimeError:
        raise ValueError(f"{name} of shape {tuple(t.shape)} does not broadcast to the parameter shape {tuple(shape)}") from None


class AdditiveNoise(NoiseModel):
    """:math:`\\xi = s \\odot z`, ``z`` iid with unit variance (see the module docstring).

    Args:
        scale: per-coordinate standard deviation :math:`s` (a number or a tensor broadcastable to the
            parameter shape), ``>= 0``.
        distribution: one of :data:`DISTRIBUTIONS`.
        df: degrees of freedom of ``student_t`` (an integer ``>= 3``, so that the variance is finite).
        batch_size: the noise is a mean of ``batch_size`` draws (variance divided by ``batch_size``).
        channel: stream channel (distinct noises summed with :class:`SumNoise` need distinct channels).
    """

    def __init__(self, scale: Any = 1.0, distribution: str = "gaussian", *, df: int | None = None, batch_size: int = 1,
                 channel: str = "noise") -> None:
        self.scale = _as_scale("scale", scale)
        self.distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
        if self.distribution == "student_t":
            if df is None:
                raise ValueError("df is required for distribution='student_t' (an integer >= 3)")
            self.df = check_int("df", df, minimum=3)
        else:
            if df is not None:
                raise ValueError(f"df only applies to distribution='student_t', got df={df!r} for {distribution!r}")
            self.df = None
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        if not isinstance(channel, str):
            raise TypeError(f"channel must be a str, got {type(channel).__name__}")
        self.channel = channel

    @classmethod
    def bounded(cls, bound: Any, **kwargs) -> "AdditiveNoise":
        """Uniform noise on :math:`[-B_i, B_i]` (so :math:`s = B/\\sqrt3` and σ = ``bound`` at batch size 1)."""
        return cls(_as_scale("bound", bound) / _SQRT3, "uniform", **kwargs)

    def check_shape(self, shape: Sequence[int]) -> None:
        _broadcast("scale", self.scale, shape)

    def sample(self, streams, step: int, x: torch.Tensor, grad: torch.Tensor | None = None) -> torch.Tensor:
        shape = tuple(x.shape[1:])
        z = _draw_mean(streams, step, self.channel, self.distribution, shape, x.dtype, self.df, self.batch_size)
        if self.scale.dim() == 0:  # one scale for every coordinate: a scalar multiply
            return z.mul_(float(self.scale))
        return z.mul_(_broadcast("scale", self.scale, shape).to(x.dtype))

    def variance(self, shape: Sequence[int]) -> torch.Tensor:
        """:math:`E\\xi_i^2 = s_i^2 / b` per coordinate."""
        return _broadcast("scale", self.scale, shape) ** 2 / self.batch_size

    def bound(self, shape: Sequence[int]) -> torch.Tensor:
        """The almost-sure bound :math:`|\\xi_i| \\le B_i` (``rademacher``: s, ``uniform``: √3 s)."""
        if self.distribution not in ("rademacher", "uniform"):
            raise ValueError(f"{self.distribution} noise is unbounded; only 'rademacher' and 'uniform' have a bound")
        s = _broadcast("scale", self.scale, shape)
        return s.clone() if self.distribution == "rademacher" else _SQRT3 * s

    def sigma(self, shape: Sequence[int] | None = None) -> torch.Tensor:
        """The sub-gaussian parameter vector :math:`\\sigma` with :math:`E\\exp(\\xi_i^2/\\sigma_i^2) \\le e`.

        Raises :class:`NotSubGaussianError` for ``student_t``.
        """
        if self.distribution == "student_t":
            raise NotSubGaussianError(
                f"Student-t noise (df={self.df}) is not sub-gaussian: its tails are polynomial, so "
                "E exp(xi^2/sigma^2) is infinite for every sigma; use it only as a heavy-tailed contrast"
            )
        s = self.scale if shape is None else _broadcast("scale", self.scale, shape)
        b = self.batch_size
        proxy_sigma = GAUSSIAN_SIGMA_FACTOR * s / math.sqrt(b)
        if self.distribution == "gaussian":
            return proxy_sigma.clone()
        bound = s if self.distribution == "rademacher" else _SQRT3 * s
        return bound.clone() if b == 1 else torch.minimum(bound, proxy_sigma)

    def describe(self) -> dict[str, Any]:
        scale = self.scale.tolist() if self.scale.numel() <= 16 else {"numel": self.scale.numel(),
                                                                        "max": float(self.scale.max()),
                                                                        "l2": float(self.scale.norm())}
        return {"type": "additive", "distribution": self.distribution, "df": self.df, "batch_size": self.batch_size,
                "scale": scale, "channel": self.channel}


class MultiplicativeNoise(NoiseModel):
    """:math:`\\xi = z \\odot x` (``target="iterate"``) or :math:`z \\odot \\nabla f(x)` (``target="gradient"``).

    :math:`z_i` has standard deviation :math:`\\tau_i` (``scale``) and one of the bounded or Gaussian
    distributions; ``batch_size`` averages independent draws of :math:`z`.
    """

    TARGETS = ("iterate", "gradient")

    def __init__(self, scale: Any = 1.0, distribution: str = "gaussian", *, target: str = "iterate", df: int | None = None,
                 batch_size: int = 1, channel: str = "noise.multiplicative") -> None:
        self._z = AdditiveNoise(scale, distribution, df=df, batch_size=batch_size, channel=channel)
        self.target = check_choice("target", target, self.TARGETS)
        self.channel = channel

    @property
    def scale(self) -> torch.Tensor:
        return self._z.scale

    @property
    def distribution(self) -> str:
        return self._z.distribution

    def check_shape(self, shape: Sequence[int]) -> None:
        self._z.check_shape(shape)

    def _multiplier(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return x if self.target == "iterate" else grad

    def sample(self, streams, step: int, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        return self._z.sample(streams, step, x) * self._multiplier(x, grad)

    def variance_at(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """:math:`E[\\xi_i^2 \\mid x] = \\tau_i^2 t_i^2 / b` with :math:`t` the target."""
        return self._z.variance(tuple(x.shape[1:])) * self._multiplier(x, grad) ** 2

    def sigma(self, shape: Sequence[int] | None = None) -> torch.Tensor:
        raise NotSubGaussianError(
            "multiplicative noise has no constant sub-gaussian parameter: conditionally on x it is sub-gaussian with "
            "sigma_i = sigma_z,i * |t_i| (t = the iterate or the gradient), unbounded over the domain; use sigma_at(x, grad)"
        )

    def sigma_at(self, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        """The conditional parameter :math:`\\sigma_i(x) = \\sigma_{z,i} |t_i|` (``[S, *shape]``)."""
        return self._z.sigma(tuple(x.shape[1:])) * self._multiplier(x, grad).abs()

    def describe(self) -> dict[str, Any]:
        out = self._z.describe()
        out.update(type="multiplicative", target=self.target)
        return out


class SumNoise(NoiseModel):
    """The sum of independent noises (each from its own channel)."""

    def __init__(self, *models: NoiseModel) -> None:
        if not models:
            raise ValueError("SumNoise needs at least one noise model")
        for m in models:
            if not isinstance(m, NoiseModel):
                raise TypeError(f"SumNoise takes NoiseModel instances, got {type(m).__name__}")
        channels = [m.channel for m in models]
        if len(set(channels)) != len(channels):
            raise ValueError(f"the summed noises must use distinct channels (else they are not independent), got {channels}")
        self.models = tuple(models)
        self.channel = "+".join(channels)

    def check_shape(self, shape: Sequence[int]) -> None:
        for m in self.models:
            m.check_shape(shape)

    def sample(self, streams, step: int, x: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
        total = None
        for m in self.models:
            xi = m.sample(streams, step, x, grad)
            total = xi if total is None else total + xi
        return total

    def sigma(self, shape: Sequence[int] | None = None) -> torch.Tensor:
        raise NotSubGaussianError("a sum of noises reports no single sigma; ask each model (SumNoise.models)")

    def describe(self) -> dict[str, Any]:
        return {"type": "sum", "models": [m.describe() for m in self.models]}


def sparse_support_size(d: int, beta: float) -> int:
    """:math:`\\lceil d^\\beta \\rceil` (exact for integer powers despite floating point)."""
    d = check_int("d", d, minimum=1)
    beta = check_unit_interval("beta", beta)
    power = d**beta
    nearest = round(power)
    k = nearest if abs(power - nearest) <= 1e-9 * max(1.0, power) else math.ceil(power)
    return min(max(k, 1), d)


def sparse_scale(shape: int | Sequence[int], beta: float, *, scale: float = 1.0, placement: str = "random",
                 seed: int = 0) -> torch.Tensor:
    """A scale vector (or array of ``shape``) equal to ``scale`` on :math:`\\lceil d^\\beta\\rceil` coordinates, 0 elsewhere.

    ``placement``: ``"random"`` (a uniformly random set from ``seed``), ``"first"`` (a contiguous prefix,
    filling few subsets: E4 (a)) or ``"spread"`` (evenly spaced, :math:`\\lfloor j d/k \\rfloor`: E4 (b)).
    Coordinates are counted in row-major order for matrix shapes.
    """
    shape = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else tuple(shape)
    for n in shape:
        check_int("shape", n, minimum=1)
    d = math.prod(shape)
    k = sparse_support_size(d, beta)
    value = _as_scale("scale", scale)
    if value.numel() != 1:
        raise ValueError("scale must be a single number for sparse_scale")
    check_choice("placement", placement, ("random", "first", "spread"))
    if placement == "random":
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        support = torch.randperm(d, generator=g)[:k]
    elif placement == "first":
        support = torch.arange(k)
    else:
        support = torch.tensor([(j * d) // k for j in range(k)], dtype=torch.int64)
    out = torch.zeros(d, dtype=torch.float64)
    out[support] = float(value)
    return out.reshape(shape)
