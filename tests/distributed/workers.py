"""What each rank runs in the distributed tests (module-level functions, importable by spawned ranks).

A tiny float64 model whose names route like a transformer's (``attn.q_proj``, ``mlp.up_proj`` /
``down_proj`` are block linears, ``lm_head`` a head): a tall, a wide and a square weight matrix with
biases. Each rank trains on its half of a fixed global batch; the single-process reference trains the
same model on the whole batch, so after DDP's or FSDP's gradient averaging both sides step with the
same gradient up to round-off.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

import algorithms
from algorithms.grouping import paper_param_groups

GLOBAL_BATCH = 8
STEPS = 5
WRAPS = ("ddp", "fsdp2", "fsdp1", "fsdp1_orig")


class TinyBlock(nn.Module):
    def __init__(self, d: int = 6, ffn: int = 12, vocab: int = 5) -> None:
        super().__init__()
        self.attn = nn.ModuleDict({"q_proj": nn.Linear(d, d)})
        self.mlp = nn.ModuleDict({"up_proj": nn.Linear(d, ffn), "down_proj": nn.Linear(ffn, d)})
        self.norm = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x + torch.tanh(self.attn["q_proj"](x))
        h = h + self.mlp["down_proj"](torch.tanh(self.mlp["up_proj"](self.norm(h))))
        return self.lm_head(h)


def tiny_model() -> TinyBlock:
    torch.manual_seed(0)
    return TinyBlock().double()


def batches(steps: int = STEPS) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(GLOBAL_BATCH, 6, generator=gen, dtype=torch.float64),
             torch.randn(GLOBAL_BATCH, 5, generator=gen, dtype=torch.float64)) for _ in range(steps)]


def settings(name: str) -> dict[str, Any]:
    """The first input of the optimizer database (small ranks, refreshes every 3 steps)."""
    from tests.optim_db import OPTIM_DB

    return dict(OPTIM_DB[name].inputs[0].kwargs)


def make_optimizer(name: str, model: nn.Module) -> torch.optim.Optimizer:
    """``name`` is a registry name, or ``"name json-kwargs"`` for settings other than the database's first input."""
    import json

    name, _, extra = name.partition(" ")
    return algorithms.make(name, paper_param_groups(name, model), **{**settings(name), **json.loads(extra or "{}")})


def train(model: nn.Module, opt: torch.optim.Optimizer, data, rank: int = 0, world: int = 1) -> None:
    per_rank = GLOBAL_BATCH // world
    for x, y in data:
        xs, ys = x[rank * per_rank:(rank + 1) * per_rank], y[rank * per_rank:(rank + 1) * per_rank]
        loss = torch.nn.functional.mse_loss(model(xs), ys)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


def reference_parameters(name: str) -> dict[str, torch.Tensor]:
    """The single-process run of ``name`` (see :func:`make_optimizer`) on the whole batches."""
    model = tiny_model()
    train(model, make_optimizer(name, model), batches())
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def _wrap(model: nn.Module, wrap: str) -> nn.Module:
    if wrap == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model)
    if wrap == "fsdp2":
        from torch.distributed.fsdp import fully_shard

        for module in (model.attn["q_proj"], model.mlp["up_proj"], model.mlp["down_proj"], model.lm_head):
            fully_shard(module)
        fully_shard(model)
        return model
    from torch.distributed.fsdp import FullyShardedDataParallel

    return FullyShardedDataParallel(model, use_orig_params=wrap == "fsdp1_orig", device_id=torch.device("cpu"))


def _full(t: torch.Tensor) -> torch.Tensor:
    from algorithms.distributed import is_dtensor

    return t.full_tensor() if is_dtensor(t) else t


def _rank_copies(t: torch.Tensor) -> list[torch.Tensor]:
    import torch.distributed as dist

    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, t.detach().cpu())
    return everyone


def train_on_ranks(names: list[str], wrap: str) -> dict[str, dict[str, Any]]:
    """Per optimizer: ``error`` (construction or a step raised: type and message), or ``params`` (full
    values, rank 0), ``replicas_equal`` (parameters and state bit-identical on every rank, DDP) and
    ``state_bytes`` (this rank's optimizer state)."""
    import torch.distributed as dist

    rank, world = dist.get_rank(), dist.get_world_size()
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        model = tiny_model()
        wrapped = _wrap(model, wrap)
        try:
            opt = make_optimizer(name, model if wrap != "fsdp1" else wrapped)
            train(wrapped, opt, batches(), rank, world)
        except Exception as exc:  # reported to the test, which decides whether it was expected
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        result: dict[str, Any] = {"state_bytes": sum(_local(v).numel() * v.element_size() for st in opt.state.values()
                                                     for v in st.values() if isinstance(v, torch.Tensor))}
        if wrap.startswith("fsdp1"):
            from torch.distributed.fsdp import FullyShardedDataParallel

            with FullyShardedDataParallel.summon_full_params(wrapped):
                result["params"] = {n: p.detach().clone() for n, p in model.named_parameters()}
        else:
            result["params"] = {n: _full(p).detach().clone() for n, p in model.named_parameters()}
        if wrap == "ddp":
            tensors = [p for p in model.parameters()] + [v for st in opt.state.values() for _, v in sorted(st.items())
                                                         if isinstance(v, torch.Tensor)]
            result["replicas_equal"] = all(all(torch.equal(c, copies[0]) for c in copies[1:])
                                           for copies in (_rank_copies(t) for t in tensors))
        out[name] = result
    return out


def _local(t: torch.Tensor) -> torch.Tensor:
    from algorithms.distributed import is_dtensor

    return t.to_local() if is_dtensor(t) else t


def ddp_with_rank_seeds(name: str) -> bool:
    """A planted DDP bug: each rank seeds the optimizer's generators with its rank. Returns whether the
    replicas stayed equal (the check must say no for a randomized method)."""
    import torch.distributed as dist

    from torch.nn.parallel import DistributedDataParallel

    rank, world = dist.get_rank(), dist.get_world_size()
    model = tiny_model()
    wrapped = DistributedDataParallel(model)
    opt = algorithms.make(name, paper_param_groups(name, model), **{**settings(name), "seed": rank})
    train(wrapped, opt, batches(), rank, world)
    return all(all(torch.equal(c, copies[0]) for c in copies[1:]) for copies in (_rank_copies(p) for p in model.parameters()))


def state_layout(name: str, wrap: str = "fsdp2") -> dict[str, dict[str, Any]]:
    """Per parameter (rank 0's view after training): the state tensors' global and local element counts and
    whether each state tensor shaped like its parameter is sharded as the parameter is."""
    import torch.distributed as dist

    from algorithms.distributed import is_dtensor

    model = tiny_model()
    wrapped = _wrap(model, wrap)
    opt = make_optimizer(name, model)
    train(wrapped, opt, batches(), dist.get_rank(), dist.get_world_size())
    names = {id(p): n for n, p in model.named_parameters()}
    out = {}
    for p, st in opt.state.items():
        tensors = {k: v for k, v in st.items() if isinstance(v, torch.Tensor) and v.is_floating_point()}
        out[names[id(p)]] = {
            "global": sum(v.numel() for v in tensors.values()),
            "local": sum(_local(v).numel() for v in tensors.values()),
            "like_param_sharded": all(is_dtensor(v) and v.placements == p.placements
                                      for v in tensors.values() if tuple(v.shape) == tuple(p.shape)),
            "keys": sorted(tensors),
        }
    return out


def dcp_resume(name: str, directory: str, stop: int = 2) -> dict[str, torch.Tensor]:
    """Train ``stop`` steps, save model and optimizer with torch.distributed.checkpoint, load them into a new
    model and optimizer, train the remaining steps; returns the full parameters (rank 0)."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (get_model_state_dict, get_optimizer_state_dict,
                                                         set_model_state_dict, set_optimizer_state_dict)

    rank, world = dist.get_rank(), dist.get_world_size()
    data = batches()
    model = tiny_model()
    wrapped = _wrap(model, "fsdp2")
    opt = make_optimizer(name, model)
    train(wrapped, opt, data[:stop], rank, world)
    dcp.save({"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt)},
             checkpoint_id=directory)
    fresh = TinyBlock().double()  # other initial values: everything must come from the checkpoint
    _wrap(fresh, "fsdp2")
    fresh_opt = make_optimizer(name, fresh)
    state = {"model": get_model_state_dict(fresh), "optim": get_optimizer_state_dict(fresh, fresh_opt)}
    dcp.load(state, checkpoint_id=directory)
    set_model_state_dict(fresh, state["model"])
    set_optimizer_state_dict(fresh, fresh_opt, state["optim"])
    train(fresh, fresh_opt, data[stop:], rank, world)
    return {n: _full(p).detach().clone() for n, p in fresh.named_parameters()}


def fsdp2_parameters(name: str) -> dict[str, torch.Tensor]:
    import torch.distributed as dist

    model = tiny_model()
    wrapped = _wrap(model, "fsdp2")
    train(wrapped, make_optimizer(name, model), batches(), dist.get_rank(), dist.get_world_size())
    return {n: _full(p).detach().clone() for n, p in model.named_parameters()}


def state_layouts(names: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    return {name: state_layout(name) for name in names}


def dcp_round_trips(names: list[str], directory: str) -> dict[str, bool]:
    """Per optimizer: a run resumed from a torch.distributed.checkpoint equals the uninterrupted run bit for bit."""
    import os

    out = {}
    for name in names:
        resumed = dcp_resume(name, os.path.join(directory, name))
        straight = fsdp2_parameters(name)
        out[name] = all(torch.equal(resumed[k], straight[k]) for k in straight)
    return out
