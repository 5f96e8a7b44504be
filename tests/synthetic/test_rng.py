"""Counter-based seed streams: the specification, independence from the batch, and distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from synthetic.rng import SeedStreams, mix64_reference, splitmix64_reference

MASK = (1 << 64) - 1


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


def test_normal_distribution_moments_and_ks():
    z = SeedStreams(8).normal(0, "z", (25_001,)).reshape(-1).numpy()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert np.abs(z).max() <= math.sqrt(64 * math.log(2)) + 1e-12  # the documented truncation


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
