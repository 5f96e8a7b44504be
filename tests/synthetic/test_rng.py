"""Counter-based seed streams: the specification, independence from the batch, and distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from synthetic.rng import (NORMAL_REFERENCE_RTOL, SeedStreams, _box_muller, box_muller_reference, mix64_reference,
                           normal_reference, splitmix64_reference)

MASK = (1 << 64) - 1
#: the largest |z|: r at the smallest uniform 2^-33 times cos(0) = 1, sqrt(66 log 2) plus float32 rounding
NORMAL_BOUND = math.sqrt(66 * math.log(2)) * (1 + 4 * 2.0**-23)


def test_splitmix64_finaliser_reference_values():
    """The published SplitMix64 sequence for seed 0: mix(k * golden gamma), k = 1, 2, 3."""
    gamma = 0x9E3779B97F4A7C15
    assert [mix64_reference(k * gamma) for k in (1, 2, 3)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_tensor_bits_equal_the_pure_python_specification():
    seeds = [0, 5, 2**62 + 11, 2**63 - 1]
    bits = SeedStreams(seeds).bits(123456789, "noise", 17)
    for row, seed in enumerate(seeds):
        expected = splitmix64_reference(seed, "noise", 123456789, 17)
        assert [int(b) & MASK for b in bits[row]] == expected


@pytest.mark.parametrize("draw", ["uniform", "normal", "rademacher", "integers", "chi_square"])
def test_a_seed_alone_equals_the_same_seed_in_any_batch(draw):
    seeds = list(range(40, 71))
    kwargs = {"integers": {"high": 13}, "chi_square": {"df": 3}}.get(draw, {})
    full = getattr(SeedStreams(seeds), draw)(7, "x", (5, 9), **kwargs)
    for index in ([12], [0, 30], [3, 1, 4, 15], list(range(30, -1, -1))):
        part = getattr(SeedStreams([seeds[i] for i in index]), draw)(7, "x", (5, 9), **kwargs)
        assert torch.equal(full[index], part)


def test_steps_channels_and_seeds_give_different_numbers():
    s = SeedStreams([1, 2])
    a = s.normal(1, "noise", (64,))
    assert not torch.equal(a, s.normal(2, "noise", (64,)))
    assert not torch.equal(a, s.normal(1, "sample", (64,)))
    assert not torch.equal(a[0], a[1])
    assert torch.equal(a, SeedStreams([1, 2]).normal(1, "noise", (64,)))  # reproducible


def test_select_keeps_the_numbers():
    s = SeedStreams([9, 8, 7])
    assert torch.equal(s.select(1).uniform(3, "c", (4,))[0], s.uniform(3, "c", (4,))[1])
    assert torch.equal(s.select([2, 0]).uniform(3, "c", (4,)), s.uniform(3, "c", (4,))[[2, 0]])
    assert s.select(slice(1, None)).seeds == (8, 7)


def test_uniform_distribution_and_open_interval():
    u = SeedStreams(8).uniform(0, "u", (25_000,)).reshape(-1)
    assert float(u.min()) > 0 and float(u.max()) < 1
    assert stats.kstest(u.numpy(), "uniform").pvalue > 1e-3


def _relative_gap(z: torch.Tensor, reference: torch.Tensor) -> float:
    """Largest elementwise |z - reference| / |reference| (0 where both are exactly 0)."""
    z, reference = z.to(torch.float64), reference.to(torch.float64)
    gap = (z - reference).abs()
    if bool(((reference == 0) & (gap > 0)).any()) or not bool(torch.isfinite(z).all()):
        return math.inf
    return float(torch.where(reference == 0, 0.0, gap / reference.abs()).max())


def _reference_rows(seeds, channel, step, count) -> torch.Tensor:
    return torch.tensor([normal_reference(s, channel, step, count) for s in seeds], dtype=torch.float64)


@pytest.mark.parametrize("count", [1, 2, 999, 1000])
def test_normals_equal_the_pure_python_specification(count):
    """Every step of Box–Muller is float32 arithmetic; only log/cos/sin may differ, by NORMAL_REFERENCE_RTOL."""
    seeds = [0, 5, 2**62 + 11, 2**63 - 1]
    z = SeedStreams(seeds).normal(123456789, "noise", (count,))
    reference = _reference_rows(seeds, "noise", 123456789, count)
    assert z.shape == reference.shape
    assert _relative_gap(z, reference) <= NORMAL_REFERENCE_RTOL


def _mutant_normals(bits: torch.Tensor, count: int, mutation: str) -> torch.Tensor:
    """Box–Muller computed in float64 from the same bits (a slip in itself: the float32 roundings are the
    specification), with one more realistic slip unless ``mutation == "float64"``."""
    low = (bits & 0xFFFFFFFF).to(torch.float64)
    high = (bits >> 32).to(torch.float64)
    if mutation == "halves_swapped":  # radius from the high half, angle from the low one
        low, high = high + 2.0**31, low - 2.0**31
    radius = torch.sqrt(-2.0 * torch.log((low + 0.5) * 2.0**-32))
    angle = high * (math.pi * 2.0**-31)
    if mutation == "half_circle":  # the angle scaled by 2^-32: it covers [-pi/2, pi/2) only
        angle = high * (math.pi * 2.0**-32)
    first, second = torch.cos(angle), torch.sin(angle)
    if mutation == "sin_first":
        first, second = second, first
    return torch.cat([radius * first, radius * second], dim=1)[:, :count]


@pytest.mark.parametrize("mutation", ["float64", "halves_swapped", "half_circle", "sin_first"])
def test_the_specification_comparison_rejects_realistic_slips(mutation):
    seeds, count = [0, 5, 7], 600
    bits = SeedStreams(seeds).bits(11, "noise", count // 2)
    reference = _reference_rows(seeds, "noise", 11, count)
    assert _relative_gap(SeedStreams(seeds).normal(11, "noise", (count,)), reference) <= NORMAL_REFERENCE_RTOL
    assert _relative_gap(_mutant_normals(bits, count, mutation), reference) > NORMAL_REFERENCE_RTOL


def test_float32_normals_are_the_float64_ones_unrounded():
    """The numbers are float32 numbers in every dtype: float32 and float64 draws agree exactly."""
    s = SeedStreams([3, 4, 5])
    z64 = s.normal(2, "noise", (7, 11))
    z32 = s.normal(2, "noise", (7, 11), torch.float32)
    assert z32.dtype == torch.float32 and z64.dtype == torch.float64
    assert torch.equal(z32.to(torch.float64), z64)


def test_normals_are_the_same_with_one_thread_and_in_a_large_batch():
    """Tensors above the intra-op grain size split across threads: a seed's numbers must not move."""
    seeds = list(range(100, 140))
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        batched = SeedStreams(seeds).normal(5, "noise", (2001,))  # 80k numbers: split across the threads
        torch.set_num_threads(1)
        alone = torch.cat([SeedStreams([s]).normal(5, "noise", (2001,)) for s in seeds[::7]])
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(batched[::7], alone)


def test_normal_distribution_moments_tails_and_ks():
    """One million numbers: KS against N(0, 1), the first four moments, the tails beyond 2, 3 and 4."""
    z = SeedStreams(16).normal(0, "z", (62_501,)).reshape(-1).to(torch.float64).numpy()
    n = z.size
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(z)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(z)) < 5 * math.sqrt(24 / n)
    for t in (2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(t)
        assert abs(np.mean(np.abs(z) > t) - p) < 5 * math.sqrt(p * (1 - p) / n) + 1 / n, t
    assert np.abs(z).max() <= NORMAL_BOUND  # the documented truncation


def test_box_muller_radius_and_angle():
    """r^2 / 2 of a pair is Exp(1) and its angle uniform, independent of each other."""
    z = SeedStreams(64).normal(3, "z", (2, 4000))  # numbers j and j + n/2 of one output: rows 0 and 1
    a, b = z[:, 0].reshape(-1).numpy(), z[:, 1].reshape(-1).numpy()
    half_r2 = (a * a + b * b) / 2
    angle = np.arctan2(b, a)
    assert stats.kstest(half_r2, "expon").pvalue > 1e-3
    assert stats.kstest(angle, stats.uniform(loc=-math.pi, scale=2 * math.pi).cdf).pvalue > 1e-3
    assert abs(stats.spearmanr(half_r2, np.abs(angle)).statistic) < 5 / math.sqrt(half_r2.size)


@pytest.mark.parametrize(
    "bits, expected",
    [
        (0, (math.sqrt(66 * math.log(2)), 0.0)),  # the smallest uniform 2^-33 at angle 0: the largest number
        (1 << 31 << 32, (-math.sqrt(66 * math.log(2)), 0.0)),  # ... at angle -pi: cos = -1, sin = tiny
        (0xFFFFFFFF, (0.0, 0.0)),  # the largest uniform rounds to 1 in float32: radius 0
        (0x40000000_00000000 | 0x7FFFFFFF, (0.0, math.sqrt(2 * math.log(2)))),  # u ~ 1/2 at angle pi/2
    ],
)
def test_box_muller_at_the_extreme_bit_patterns(bits, expected):
    """The documented bound |z| <= sqrt(66 log 2) ~ 6.764 is reached, and only there."""
    reference = box_muller_reference(bits)
    tensor = _box_muller(torch.tensor([[bits - (1 << 64) if bits >= 1 << 63 else bits]]), torch.float64)[0].tolist()
    for got in (reference, tensor):
        assert got == pytest.approx(expected, abs=1e-6)
        assert max(abs(v) for v in got) <= NORMAL_BOUND
    assert _relative_gap(torch.tensor(tensor, dtype=torch.float64), torch.tensor(reference, dtype=torch.float64)) <= NORMAL_REFERENCE_RTOL


def test_normal_pairs_are_uncorrelated():
    """Box–Muller uses one output for numbers j and j + n/2: they must be uncorrelated."""
    z = SeedStreams(4000).normal(0, "z", (2,))
    r = float(torch.corrcoef(z.T)[0, 1])
    assert abs(r) < 5 / math.sqrt(4000)


def test_rademacher_and_integers():
    r = SeedStreams(16).rademacher(1, "r", (4096,))
    assert set(r.unique().tolist()) == {-1.0, 1.0}
    assert abs(float(r.mean())) < 5 / math.sqrt(r.numel())
    k = SeedStreams(16).integers(1, "k", (4096,), high=7).reshape(-1)
    counts = torch.bincount(k, minlength=7).numpy()
    assert counts.size == 7 and k.min() >= 0
    assert stats.chisquare(counts).pvalue > 1e-3


def test_chi_square_mean():
    c = SeedStreams(64).chi_square(1, "c", (2000,), df=4).reshape(-1)
    assert abs(float(c.mean()) - 4) < 5 * math.sqrt(8 / c.numel())


@pytest.mark.parametrize(
    "args, error, match",
    [
        (([],), ValueError, "at least one seed"),
        (([-1],), ValueError, r"seeds must be in \[0, 2\*\*63\)"),
        (([1.5],), TypeError, "seeds must be integers"),
        ((0,), ValueError, "seeds must be >= 1"),
    ],
)
def test_bad_seeds(args, error, match):
    with pytest.raises(error, match=match):
        SeedStreams(*args)


def test_bad_draw_arguments():
    s = SeedStreams(2)
    with pytest.raises(ValueError, match="step must be >= 0"):
        s.uniform(-1, "x", (2,))
    with pytest.raises(TypeError, match="channel must be a str"):
        s.uniform(0, 3, (2,))
    with pytest.raises(ValueError, match="high must be >= 1"):
        s.integers(0, "x", (2,), high=0)
    with pytest.raises(ValueError, match="shape must be >= 0"):
        s.normal(0, "x", (-2,))
