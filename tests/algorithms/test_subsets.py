"""algorithms/subsets.py: partitions, per-subset sums of squares, broadcasting, the fallback policy."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

import algorithms
from algorithms.subsets import (
    SubsetFallbackWarning,
    check_subset_size,
    divide_by_subsets,
    largest_divisor_at_most,
    subset_layout,
    subset_sum_of_squares,
)


# ----------------------------------------------------------------------------- divisors
def brute_largest_divisor(n, k):
    return max(i for i in range(1, min(n, k) + 1) if n % i == 0)


@pytest.mark.parametrize("n", [1, 2, 7, 12, 36, 60, 97, 360, 1001, 4096, 5461])
@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 50, 10_000])
def test_largest_divisor_matches_brute_force(n, k):
    assert largest_divisor_at_most(n, k) == brute_largest_divisor(n, k)


def test_largest_divisor_rejects_nonpositive():
    with pytest.raises(ValueError):
        largest_divisor_at_most(0, 3)
    with pytest.raises(ValueError):
        largest_divisor_at_most(5, 0)


# ----------------------------------------------------------------------------- explicit partitions
def explicit_subsets(shape, rule):
    """The partition written out as lists of flat (row-major) indices, straight from the rule's definition."""
    numel = math.prod(shape)
    if rule == "coordinate" or numel == 0:
        return [[i] for i in range(numel)]
    if rule == "norm":
        return [list(range(numel))]
    if rule == "heuristics":
        if len(shape) <= 1:
            return [[i] for i in range(numel)]
        m = shape[0]
        n = numel // m
        if m >= n:  # one subset per row
            return [[i * n + j for j in range(n)] for i in range(m)]
        return [[i * n + j for i in range(m)] for j in range(n)]  # one per column
    target = rule if rule > 0 else math.floor(math.sqrt(numel) / -rule)
    k = brute_largest_divisor(numel, max(target, 1))
    return [list(range(c * k, (c + 1) * k)) for c in range(numel // k)]


SHAPES = [(), (1,), (7,), (12, 5), (5, 12), (8, 8), (3, 6, 4), (4, 3, 3, 2), (0, 5), (64, 1), (1, 64)]
RULES = ["heuristics", "coordinate", "norm", 1, 4, 7, 1000, -1, -2, -3]


@pytest.mark.parametrize("rule", RULES, ids=str)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_sum_of_squares_and_division_match_the_explicit_partition(shape, rule):
    g = torch.Generator().manual_seed(0)
    grad = torch.randn(shape, generator=g, dtype=torch.float64)
    layout = subset_layout(shape, rule)
    subsets = explicit_subsets(shape, rule)
    flat = grad.reshape(-1)
    assert layout.num_subsets == len(subsets)
    assert math.prod(layout.state_shape) == len(subsets)
    if subsets:
        assert layout.subset_size == len(subsets[0])

    sums = subset_sum_of_squares(grad, layout, 0)
    assert tuple(sums.shape) == layout.state_shape
    # every coordinate must be divided by the sum over *its* subset
    denom = 1.0 + sums  # any positive per-subset tensor
    divided = divide_by_subsets(grad, denom, layout, 0).reshape(-1)
    assert divided.shape == flat.shape
    for members in subsets:
        expected_sum = sum(float(flat[i]) ** 2 for i in members)
        for i in members:
            assert math.isclose(float(divided[i]), float(flat[i]) / (1.0 + expected_sum), rel_tol=1e-13, abs_tol=1e-300)
    assert math.isclose(float(sums.sum()), float((flat * flat).sum()), rel_tol=1e-13, abs_tol=1e-300)


def test_heuristics_state_shapes_follow_the_smaller_dimension():
    """docs/methods.md §1.2 [C]: m ≥ n -> one accumulator per row (m, 1); m < n -> per column (1, n); square -> rows."""
    assert subset_layout((12, 5), "heuristics").state_shape == (12, 1)
    assert subset_layout((5, 12), "heuristics").state_shape == (1, 12)
    assert subset_layout((8, 8), "heuristics").state_shape == (8, 1)
    assert subset_layout((12, 5), "heuristics").subset_size == 5  # k = min(m, n)
    assert subset_layout((7,), "heuristics").state_shape == (7,)  # coordinate-wise
    assert subset_layout((3, 6, 4), "heuristics").view == (3, 24)
    assert subset_layout((3, 6, 4), "heuristics").state_shape == (1, 24)  # 3 < 24: one per column


def test_integer_rules():
    assert subset_layout((64,), 5).subset_size == 4
    assert subset_layout((60,), 7).subset_size == 6
    assert subset_layout((60,), 100).subset_size == 60  # k >= numel: one subset
    assert subset_layout((8, 8), -2).subset_size == 4  # ⌊√64 / 2⌋ = 4
    assert subset_layout((72,), -2).subset_size == 4  # ⌊8.49 / 2⌋ = 4
    assert subset_layout((2048, 2048), -2).state_shape == (2048 * 2048 // 1024, 1)
    layout = subset_layout((7,), 4)  # prime numel: no divisor in [2, 4]
    assert layout.subset_size == 1 and layout.fallback
    assert not subset_layout((7,), -2).fallback  # the target ⌊√7/2⌋ = 1 asks for single coordinates
    assert subset_layout((3,), -2).fallback  # target 0, clamped (the authors' code divides by zero)
    assert not subset_layout((), -2).fallback and not subset_layout((1,), 5).fallback


def test_llama_1b_heuristic_state_count_matches_memory_md():
    """docs/memory.md §3 [D]: AdamSN-heuristics SN states on LLaMA-1B = 24·(4·2048 + 3·5461) + 32000 = 621,800."""
    h, f, layers, vocab = 2048, 5461, 24, 32000
    per_layer = [(h, h)] * 4 + [(f, h), (f, h), (h, f)]  # q,k,v,o; gate, up (out × in); down
    total = layers * sum(subset_layout(s, "heuristics").num_subsets for s in per_layer)
    total += subset_layout((vocab, h), "heuristics").num_subsets  # lm_head
    assert total == 621_800


def test_batch_dims_never_cross_problems():
    g = torch.Generator().manual_seed(1)
    grad = torch.randn(4, 6, 10, generator=g, dtype=torch.float64)
    for rule in ["heuristics", 4, -2, "norm"]:
        layout = subset_layout((6, 10), rule)
        batched = subset_sum_of_squares(grad, layout, 1)
        for s in range(4):
            assert torch.equal(batched[s], subset_sum_of_squares(grad[s], layout, 0))
        out = divide_by_subsets(grad, 1 + batched, layout, 1)
        for s in range(4):
            assert torch.equal(out[s], divide_by_subsets(grad[s], 1 + batched[s], layout, 0))


@pytest.mark.parametrize("bad,err", [(0, ValueError), ("rows", ValueError), (2.5, TypeError), (True, TypeError), (None, TypeError)])
def test_check_subset_size(bad, err):
    with pytest.raises(err, match="subset_size"):
        check_subset_size(bad)


# ----------------------------------------------------------------------------- fallback policy
def test_fallback_warns_by_default_and_names_the_parameter():
    p = torch.zeros(7, requires_grad=True)
    with pytest.warns(SubsetFallbackWarning, match=r"numel=7.*\['params'\]\[0\]|\['params'\]\[0\].*numel=7"):
        algorithms.make("adam_sn", [p], subset_size=4)


def test_fallback_raise_is_at_construction_and_names_the_parameter():
    ok = torch.zeros(8, requires_grad=True)
    bad = torch.zeros(11, requires_grad=True)
    with pytest.raises(ValueError, match=r"subset_size=4.*'bias'.*numel=11"):
        algorithms.make("adam_sn", [{"params": [ok, bad], "param_names": ["w", "bias"]}], subset_size=4,
                        subset_fallback="raise")


def test_fallback_allow_is_silent_and_no_warning_without_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        algorithms.make("adam_sn", [torch.zeros(7, requires_grad=True)], subset_size=4, subset_fallback="allow")
        algorithms.make("adam_sn", [torch.zeros(8, requires_grad=True)], subset_size=4)
        algorithms.make("adagrad_subset_norm", [torch.zeros(7, requires_grad=True)], subset_size=-2)


def test_fallback_policy_also_covers_the_adagrad_family():
    with pytest.raises(ValueError, match="single coordinates"):
        algorithms.make("adagrad_subset_norm", [torch.zeros(13, requires_grad=True)], subset_size=3, subset_fallback="raise")
