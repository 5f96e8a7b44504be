"""FSDP1 (FullyShardedDataParallel) hands the optimizer flattened 1-D shards: the elementwise optimizers
(sgd, adam, lion, adagrad_coordinate) compute the paper's step on them (equal to the single-process run),
every other optimizer refuses them at construction with a TypeError saying why and what to use."""

from __future__ import annotations

import pytest

import algorithms
from verify.oracle import relative_error
from verify.oracle.distributed import run_on_ranks

from .workers import reference_parameters, train_on_ranks

NAMES = sorted(algorithms.REGISTRY)
ELEMENTWISE = {"sgd", "adam", "lion", "adagrad_coordinate"}


@pytest.fixture(scope="module", params=["fsdp1", "fsdp1_orig"], ids=["flat_param", "use_orig_params"])
def fsdp1_results(request):
    return run_on_ranks(train_on_ranks, NAMES, request.param, nproc=2, timeout=240)


def test_elementwise_is_declared_by_exactly_these_classes():
    assert {n for n, cls in algorithms.REGISTRY.items() if cls.elementwise} == ELEMENTWISE


@pytest.mark.parametrize("name", NAMES)
def test_fsdp1_shards_are_stepped_correctly_or_refused(fsdp1_results, name):
    result = fsdp1_results[name]
    if name in ELEMENTWISE:
        assert "error" not in result, result.get("error")
        reference = reference_parameters(name)
        for key, value in reference.items():
            assert relative_error(result["params"][key], value) <= 1e-10, key
    else:
        assert result.get("error", "").startswith("TypeError: "), result
        assert "flattened FSDP1 shard" in result["error"] and "fully_shard" in result["error"]
