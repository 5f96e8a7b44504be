"""algorithms/distributed.py without processes: which optimizers accept FSDP1's flattened shards (the
elementwise ones) and the error every other one gives, at construction and in add_param_group."""

from __future__ import annotations

import pytest
import torch

import algorithms
from algorithms.distributed import is_dtensor, is_flattened_shard, replicate_like, settle

ELEMENTWISE = {"sgd", "adam", "lion", "adagrad_coordinate"}


def flattened(n: int = 6, attribute: str = "_fsdp_flattened") -> torch.nn.Parameter:
    p = torch.nn.Parameter(torch.zeros(n))
    setattr(p, attribute, True)
    return p


@pytest.mark.parametrize("name", sorted(algorithms.REGISTRY))
@pytest.mark.parametrize("attribute", ["_fsdp_flattened", "_is_flat_param"])
def test_flattened_shards_are_accepted_only_by_elementwise_optimizers(name, attribute):
    p = flattened(attribute=attribute)
    assert is_flattened_shard(p)
    if name in ELEMENTWISE:
        opt = algorithms.make(name, [p], lr=0.1)
        p.grad = torch.ones_like(p)
        opt.step()
        return
    with pytest.raises(TypeError, match=r"flattened FSDP1 shard .*fully_shard"):
        algorithms.make(name, [p], lr=0.1)
    opt = algorithms.make(name, [torch.nn.Parameter(torch.zeros(5))], lr=0.1)
    with pytest.raises(TypeError, match="flattened FSDP1 shard"):
        opt.add_param_group({"params": [flattened()]})
    assert len(opt.param_groups) == 1, "the rejected group was not added"


def test_plain_tensors_pass_through_the_dtensor_helpers():
    t = torch.randn(3, 2)
    assert not is_dtensor(t) and not is_flattened_shard(t)
    assert settle(t) is t and replicate_like(t, t) is t
