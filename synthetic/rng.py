r"""Counter-based random streams: one independent, reproducible stream per seed.

Every random number used by :mod:`synthetic` is a pure function of four integers,

.. math::

   u = \operatorname{bits}(\text{seed},\ \text{channel},\ \text{step},\ \text{index}),

so a seed's draws at step ``t`` do not depend on which other seeds share the batch, on how many
steps were drawn before, or on the order of the calls. This is what makes a seed's trajectory
bit-identical whether it runs alone or in a batch of any size (:mod:`synthetic.runner`), and what
makes a resumed run equal to an uninterrupted one without saving generator state.

The bit generator is SplitMix64 (Steele, Lea & Flood, OOPSLA 2014): the ``index``-th output of the
sequence that starts at a state derived from ``(seed, channel, step)``,

.. math::

   \begin{aligned}
   z_0 &= \operatorname{mix}(\operatorname{mix}(k_{\text{seed}} \oplus c_{\text{channel}}) \oplus \operatorname{mix}(\text{step})), \\
   \operatorname{bits}_j &= \operatorname{mix}(z_0 + (j + 1)\,\gamma \bmod 2^{64}), \qquad \gamma = \texttt{0x9E3779B97F4A7C15},
   \end{aligned}

with ``mix`` the SplitMix64 finaliser (xor-shift-multiply, constants ``0xBF58476D1CE4E5B9`` and
``0x94D049BB133111EB``). It is computed with ``int64`` tensor arithmetic (two's-complement
wrap-around equals arithmetic mod :math:`2^{64}`; right shifts are made logical by masking); tests
compare it with a pure-Python implementation. A stream is not cryptographic, but SplitMix64 passes
BigCrush, which is ample for Monte-Carlo rate checks.

Conversions (all elementwise, hence batch-invariant):

* uniform on the open interval (0, 1): :math:`(\lfloor \text{bits}/2^{11} \rfloor + \tfrac12)\,2^{-53}`;
* standard normal: Box–Muller in float32 on the two 32-bit halves of one output, two numbers per output,

  .. math::

     r = \sqrt{-2\log\big((k + \tfrac12)\,2^{-32}\big)}, \qquad \theta = \pi\, h\, 2^{-31}, \qquad
     z = (r\cos\theta,\ r\sin\theta),

  with :math:`k \in [0, 2^{32})` the low half read unsigned and :math:`h \in [-2^{31}, 2^{31})` the high
  half read signed, every operation rounded to float32 and the result widened exactly to float64 (see
  :meth:`SeedStreams.normal`; :math:`|z| \le \sqrt{66 \log 2} \approx 6.764`);
* Rademacher: the top bit;
* integers in ``[0, high)``: :math:`\lfloor u \cdot \text{high} \rfloor` (bias at most ``high``·2⁻⁵³).

The bits and the uniforms use only integer arithmetic and exactly rounded float64 operations, so they are
the same on every machine and equal the pure-Python reference bit for bit. The normals also use float32
``log``, ``cos`` and ``sin`` (SLEEF's vectorised versions on x86, within 1 ulp), which are not correctly
rounded: their values are fixed for one torch build and CPU capability (tested: a seed's numbers are the
same alone, in any batch, split across threads or on one thread), and agree with :func:`normal_reference`
(correctly rounded ``log``, ``cos``, ``sin``) to :data:`NORMAL_REFERENCE_RTOL` = 5·2⁻²³ relative on any
machine. A trajectory is therefore reproducible bit for bit on one machine and on resume; another CPU
capability may change a normal in its last float32 bit.

A *channel* is a string naming what the numbers are for (``"noise"``, ``"sample"``, ``"x0"``...),
hashed with BLAKE2b, so two uses never share numbers.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import struct
from typing import Sequence

import torch

from algorithms.validation import check_int

__all__ = ["SeedStreams", "splitmix64_reference", "mix64_reference", "normal_reference", "box_muller_reference",
           "NORMAL_REFERENCE_RTOL"]

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_SEED_SALT = 0x5851F42D4C957F2D
_LOW32 = 0xFFFFFFFF
_ANGLE_STEP = math.pi * 2.0**-31  # rounded to float32 where it is used, in the tensor code and in the reference

#: |normal - normal_reference| <= NORMAL_REFERENCE_RTOL * |normal_reference|, elementwise: float32 ``log``,
#: ``cos``, ``sin`` within 1 ulp (SLEEF) against correctly rounded ones differ by at most 1.5 ulp each; through
#: the exact ``-2x``, the correctly rounded ``sqrt`` (halves the relative error, adds a rounding) and the final
#: product (adds a rounding) that is 1.5 + 1.75 + 1 = 4.25 float32 ulps of the result, bounded by 5·2⁻²³ relative.
NORMAL_REFERENCE_RTOL = 5 * 2.0**-23


def _signed(u: int) -> int:
    """The int64 with the same 64-bit pattern as the unsigned integer ``u``."""
    u &= _MASK64
    return u - (1 << 64) if u >= (1 << 63) else u


def mix64_reference(z: int) -> int:
    """SplitMix64 finaliser on Python integers (the specification the tensor code is tested against)."""
    z &= _MASK64
    z = ((z ^ (z >> 30)) * _M1) & _MASK64
    z = ((z ^ (z >> 27)) * _M2) & _MASK64
    return z ^ (z >> 31)


def splitmix64_reference(seed: int, channel: str, step: int, count: int) -> list[int]:
    """The first ``count`` unsigned 64-bit outputs of one stream, in pure Python."""
    z0 = _stream_state_reference(seed, channel, step)
    return [mix64_reference(z0 + (j + 1) * _GAMMA) for j in range(count)]


def normal_reference(seed: int, channel: str, step: int, count: int) -> list[float]:
    """The first ``count`` standard normals of one stream, in pure Python with every step rounded to float32.

    The specification of :meth:`SeedStreams.normal` (the module docstring gives the math): equal to it bit for
    bit except for the float32 ``log``, ``cos`` and ``sin``, computed here correctly rounded (double
    precision, then rounded), so the two agree to :data:`NORMAL_REFERENCE_RTOL`.
    """
    half = (count + 1) // 2
    pairs = [box_muller_reference(bits) for bits in splitmix64_reference(seed, channel, step, half)]
    return ([c for c, _ in pairs] + [s for _, s in pairs])[:count]


def box_muller_reference(bits: int) -> tuple[float, float]:
    """The two normals of one unsigned 64-bit output, ``(r cos θ, r sin θ)``, every step rounded to float32."""
    low, high = bits & _LOW32, (bits & _MASK64) >> 32
    u1 = _f32(_f32(_f32(low) + 0.5) * 2.0**-32)
    radius = _f32(math.sqrt(_f32(-2.0 * _f32(math.log(u1)))))
    angle = _f32(_f32(high - (1 << 32) if high >= (1 << 31) else high) * _f32(_ANGLE_STEP))
    return _f32(_f32(math.cos(angle)) * radius), _f32(_f32(math.sin(angle)) * radius)


def _f32(x: float) -> float:
    """``x`` rounded to the nearest float32 (ties to even); exact arithmetic on float32 inputs then this is IEEE
    float32 arithmetic (products are exact in double; sums and square roots round innocuously twice)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def _stream_state_reference(seed: int, channel: str, step: int) -> int:
    key = mix64_reference(seed ^ _SEED_SALT)
    return mix64_reference(mix64_reference(key ^ _channel_code(channel)) ^ mix64_reference(step))


def _channel_code(channel: str) -> int:
    if not isinstance(channel, str):
        raise TypeError(f"channel must be a str, got {type(channel).__name__}")
    return int.from_bytes(hashlib.blake2b(channel.encode(), digest_size=8).digest(), "little")


def _srl(z: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64 bit patterns."""
    return (z >> k) & ((1 << (64 - k)) - 1)


def _mix(z: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors, in place (``z`` is overwritten and returned)."""
    tmp = torch.empty_like(z)
    for shift, multiplier in ((30, _M1), (27, _M2)):
        torch.bitwise_right_shift(z, shift, out=tmp).bitwise_and_((1 << (64 - shift)) - 1)
        z.bitwise_xor_(tmp).mul_(_signed(multiplier))
    torch.bitwise_right_shift(z, 31, out=tmp).bitwise_and_((1 << 33) - 1)
    return z.bitwise_xor_(tmp)


_OFFSETS: dict[int, torch.Tensor] = {}


def _offsets(count: int) -> torch.Tensor:
    r""":math:`(j + 1)\gamma \bmod 2^{64}` for ``j < count`` (cached: the same for every stream and step)."""
    table = _OFFSETS.get(count)
    if table is None:
        table = torch.arange(1, count + 1, dtype=torch.int64).mul_(_signed(_GAMMA))
        if len(_OFFSETS) > 64:
            _OFFSETS.clear()
        _OFFSETS[count] = table
    return table


def _check_seed(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"seeds must be integers, got {type(value).__name__}")
    value = int(value)
    if not 0 <= value < (1 << 63):
        raise ValueError(f"seeds must be in [0, 2**63), got {value}")
    return value


class SeedStreams:
    """``S`` independent counter-based random streams, one per seed (see the module docstring).

    Every draw returns a tensor ``[S, *shape]`` whose row ``s`` depends only on ``seeds[s]``,
    the channel, the step and the shape: ``SeedStreams([a, b]).normal(...)[1]`` is bit-identical to
    ``SeedStreams([b]).normal(...)[0]``.
    """

    def __init__(self, seeds: int | Sequence[int]) -> None:
        if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
            seeds = list(range(check_int("seeds", seeds, minimum=1)))
        if isinstance(seeds, torch.Tensor):
            seeds = seeds.tolist()
        seeds = [_check_seed(s) for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one seed")
        self.seeds: tuple[int, ...] = tuple(seeds)
        self._keys = torch.tensor([_signed(mix64_reference(s ^ _SEED_SALT)) for s in self.seeds], dtype=torch.int64)

    def __len__(self) -> int:
        return len(self.seeds)

    def __repr__(self) -> str:
        return f"SeedStreams({list(self.seeds)!r})"

    def select(self, index: int | Sequence[int] | slice) -> "SeedStreams":
        """The streams of a subset of the seeds (same numbers, fewer rows)."""
        if isinstance(index, slice):
            return SeedStreams(list(self.seeds[index]))
        if isinstance(index, numbers.Integral):
            return SeedStreams([self.seeds[index]])
        return SeedStreams([self.seeds[i] for i in index])

    # ------------------------------------------------------------------ raw bits
    def bits(self, step: int, channel: str, count: int) -> torch.Tensor:
        """``[S, count]`` int64 tensors holding the 64-bit outputs (two's complement)."""
        step = check_int("step", step, minimum=0)
        count = check_int("count", count, minimum=0)
        code = _signed(_channel_code(channel))
        step_code = _signed(mix64_reference(step))
        state = _mix(_mix(self._keys ^ code) ^ step_code)
        return _mix(_offsets(count).unsqueeze(0) + state.unsqueeze(1))

    # ------------------------------------------------------------------ distributions
    def uniform(self, step: int, channel: str, shape: Sequence[int], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Uniform on the open interval (0, 1), 53 random bits (float32: rounded from float64)."""
        shape = _check_shape(shape)
        u = _srl(self.bits(step, channel, math.prod(shape)), 11).to(torch.float64).add_(0.5).mul_(2.0**-53)
        return u.to(dtype).reshape(len(self), *shape)

    def normal(self, step: int, channel: str, shape: Sequence[int], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Standard normal by Box–Muller in float32, two numbers per 64-bit output, widened to ``dtype``.

        Output ``j`` gives the radius from its low half :math:`k` (unsigned) and the angle from its high half
        :math:`h` (signed), :math:`r = \\sqrt{-2\\log((k + \\tfrac12)\\,2^{-32})}` and
        :math:`\\theta = \\pi h\\, 2^{-31} \\in [-\\pi, \\pi)`; number ``j`` is :math:`r\\cos\\theta` and number
        ``j + ceil(n/2)`` is :math:`r\\sin\\theta`, each step rounded to float32 (the values are float32 numbers
        in every dtype). Hence :math:`|z| \\le \\sqrt{-2\\log 2^{-33}} = \\sqrt{66\\log 2} \\approx 6.764`: the
        tail beyond (probability 1.3e-11) is cut, which can only lower :math:`E\\,e^{\\lambda z^2}`
        (sub-gaussian constants stay valid). float32 halves the cost of the transcendental functions, which
        dominate; its 24-bit values are far finer than anything a Monte-Carlo rate check resolves.
        """
        shape = _check_shape(shape)
        n = math.prod(shape)
        half = (n + 1) // 2
        z = _box_muller(self.bits(step, channel, half), torch.float64 if dtype == torch.float64 else torch.float32)
        if 2 * half != n:
            z = z[:, :n]
        return z.to(dtype).reshape(len(self), *shape)

    def rademacher(self, step: int, channel: str, shape: Sequence[int], dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """±1 with probability ½ each (the sign bit)."""
        shape = _check_shape(shape)
        negative = self.bits(step, channel, math.prod(shape)) < 0
        return (1.0 - 2.0 * negative.to(dtype)).reshape(len(self), *shape)

    def integers(self, step: int, channel: str, shape: Sequence[int], high: int) -> torch.Tensor:
        """Uniform integers in ``[0, high)`` (int64)."""
        high = check_int("high", high, minimum=1)
        u = self.uniform(step, channel, shape)
        return torch.clamp((u * high).floor().to(torch.int64), max=high - 1)

    def chi_square(self, step: int, channel: str, shape: Sequence[int], df: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Chi-square with integer ``df``: a sum of ``df`` squared standard normals."""
        df = check_int("df", df, minimum=1)
        shape = _check_shape(shape)
        z = self.normal(step, channel, (df, *shape), dtype)
        total = z[:, 0] * z[:, 0]
        for k in range(1, df):  # a fixed left-to-right order: the same for every row and batch size
            total = total + z[:, k] * z[:, k]
        return total


def _box_muller(bits: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[S, 2m]`` normals from ``[S, m]`` outputs (overwritten): the cosines, then the sines, stored as ``dtype``."""
    radius = bits.bitwise_and(_LOW32).to(torch.float32).add_(0.5).mul_(2.0**-32).log_().mul_(-2.0).sqrt_()
    angle = bits.bitwise_right_shift_(32).to(torch.float32).mul_(_ANGLE_STEP)  # arithmetic shift: the high half signed
    m = bits.shape[-1]
    z = torch.empty(*bits.shape[:-1], 2 * m, dtype=dtype)
    torch.mul(torch.cos(angle), radius, out=z[..., :m])  # float32 products, widened exactly on the store
    torch.mul(angle.sin_(), radius, out=z[..., m:])
    return z


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = tuple(shape)
    for n in shape:
        check_int("shape", n, minimum=0)
    return shape
