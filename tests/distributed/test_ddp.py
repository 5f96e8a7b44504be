"""DDP: every registered optimizer on 2 gloo ranks keeps bit-identical parameters and state on every rank,
and equals the single-process run on the whole batch to round-off (float64)."""

from __future__ import annotations

import pytest

import algorithms
from verify.oracle import relative_error
from verify.oracle.distributed import run_on_ranks

from .workers import reference_parameters, train_on_ranks

NAMES = sorted(algorithms.REGISTRY)


@pytest.fixture(scope="module")
def ddp_results():
    return run_on_ranks(train_on_ranks, NAMES, "ddp", nproc=2, timeout=240)


def test_every_optimizer_is_covered():
    assert len(NAMES) == 17


@pytest.mark.parametrize("name", NAMES)
def test_ddp_replicas_are_identical_and_equal_the_single_process_run(ddp_results, name):
    result = ddp_results[name]
    assert "error" not in result, result.get("error")
    assert result["replicas_equal"], "parameters or state differ between the ranks"
    reference = reference_parameters(name)
    assert result["params"].keys() == reference.keys()
    for key, value in reference.items():
        assert relative_error(result["params"][key], value) <= 1e-10, key


def test_the_replica_check_catches_ranks_that_draw_different_random_numbers():
    from .workers import ddp_with_rank_seeds

    assert run_on_ranks(ddp_with_rank_seeds, "adarankgrad", nproc=2, timeout=120) is False


def test_the_comparison_is_not_vacuous():
    """Every optimizer moved every parameter away from its initial value in these 5 steps."""
    from .workers import tiny_model

    init = dict(tiny_model().named_parameters())
    for name in NAMES:
        moved = reference_parameters(name)
        assert all(relative_error(moved[k], v.detach()) > 1e-6 for k, v in init.items()), name
