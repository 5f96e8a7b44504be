"""FSDP2 (``torch.distributed.fsdp.fully_shard``): every registered optimizer on 2 gloo ranks, on DTensor
parameters sharded on their rows, equals the single-process run to round-off in float64; the projected
methods keep their state sharded (less state per rank than one process holds); optimizer state round-trips
through torch.distributed.checkpoint bit-exactly."""

from __future__ import annotations

import pytest

import algorithms
from verify.oracle import relative_error
from verify.oracle.distributed import run_on_ranks

from .workers import dcp_round_trips, reference_parameters, state_layouts, train_on_ranks

NAMES = sorted(algorithms.REGISTRY)
#: other paths on shards: integer subset sizes (chunks of the flattened rows, local where they stay on a rank,
#: gathered where they cross ranks), the official variants (LAPACK's signs: the exact SVD gathers), the
#: randomized range finder, LDAdam's power iteration from an exact first basis
VARIANTS = ['adam_sn {"subset_size": -2}', 'adagrad_subset_norm {"subset_size": 3}', 'rmsprop_sn {"subset_size": 4}',
            'galore_adamw {"variant": "official"}', 'fira_adamw {"variant": "official"}',
            'subspace_momentum {"proj_type": "uniform"}', 'subspace_momentum {"proj_type": "topk"}',
            'ldadam {"variant": "official"}', 'adarankgrad {"svd": "exact"}',
            'adam_sn_sm {"subset_size": -2}']
PROJECTED = ["adam_sn_sm", "adarankgrad", "fira_adamw", "galore_adamw", "ldadam", "subspace_momentum"]


@pytest.fixture(scope="module")
def fsdp2_results():
    return run_on_ranks(train_on_ranks, NAMES + VARIANTS, "fsdp2", nproc=2, timeout=240)


@pytest.mark.parametrize("name", NAMES + VARIANTS)
def test_fsdp2_equals_the_single_process_run(fsdp2_results, name):
    result = fsdp2_results[name]
    assert "error" not in result, result.get("error")
    reference = reference_parameters(name)
    assert result["params"].keys() == reference.keys()
    for key, value in reference.items():
        assert relative_error(result["params"][key], value) <= 1e-10, key


def test_projected_methods_keep_their_state_sharded():
    layouts = run_on_ranks(state_layouts, PROJECTED, nproc=2, timeout=240)
    for name, per_param in layouts.items():
        projected = {p: s for p, s in per_param.items() if p.endswith("_proj.weight")}
        assert projected, name
        local = sum(s["local"] for s in per_param.values())
        full = sum(s["global"] for s in per_param.values())
        assert local < full, f"{name}: rank 0 holds {local} of {full} state values"
        assert all(s["like_param_sharded"] for s in per_param.values()), name
        # the tall up_proj (12 x 6) is projected on its right side: its moments (12 x r) are row-sharded
        up = per_param["mlp.up_proj.weight"]
        assert up["local"] < up["global"], (name, up)


def test_optimizer_state_round_trips_through_distributed_checkpoint(tmp_path):
    """AdaRankGrad is left out: its state's shape follows its adaptive rank, and DCP loads into tensors
    pre-allocated in the shapes of a fresh optimizer (README support table)."""
    names = [n for n in NAMES if n != "adarankgrad"]
    assert run_on_ranks(dcp_round_trips, names, str(tmp_path), nproc=2, timeout=300) == {n: True for n in names}
