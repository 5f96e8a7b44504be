r"""Communication of each optimizer's step on FSDP2 shards, measured (README "Distributed training").

    python -m verify.comm --write results/distributed/comm.json    # 2 gloo ranks on this machine, ~1 min

Every collective an optimizer's ``step()`` issues is seen by a ``TorchDispatchMode``
(:class:`CommCounter`, which lets DTensor desugar each operation first, as torch's ``CommDebugMode``
does): DTensor's redistributions (all-gather, all-reduce, reduce-scatter, all-to-all)
and explicit ``torch.distributed`` calls. A collective's **payload** is the size of the tensor it
produces on each rank: an all-gather counts the gathered tensor, an all-reduce the reduced one (a
ring all-reduce moves about twice that over the wire, an all-gather about (W−1)/W of it). The
gradient all-gather/reduce-scatter that FSDP2 itself does in backward is not part of ``step()`` and
is not counted.

The layer is a transformer block's projections at a reduced scale (``d = 128``, ``ffn = 344``: a
square ``q_proj``, a tall ``up_proj`` and a wide ``down_proj``, plus a norm vector), float32, sharded
on rows over 2 ranks, with every projected method at rank 8 and a refresh every 3 steps (3 steps measured); random
gradients. For each method the table gives the payload of a refresh step and of a step without a
refresh, next to what gathering every weight gradient would cost (``m × n`` per matrix).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["CommCounter", "SHAPES", "measure_on_ranks", "measure_steps", "format_table", "main"]

#: (name, shape) of the measured layer: square, tall and wide weights and a vector
SHAPES = (("q_proj", (128, 128)), ("up_proj", (344, 128)), ("down_proj", (128, 344)), ("norm", (128,)))
RANK, GAP = 8, 3
#: the collectives counted (namespaces ``_c10d_functional`` / ``c10d``); gathers count their gathered output
_COLLECTIVES = ("all_reduce", "all_gather_into_tensor", "reduce_scatter_tensor", "all_to_all_single", "broadcast",
                "allreduce_", "allgather_", "_allgather_base_", "broadcast_", "reduce_scatter_", "alltoall_base_")
_GATHERS = ("all_gather_into_tensor",)


class CommCounter(TorchDispatchMode):
    """Counts the collectives dispatched while active: ``calls`` per op and ``bytes`` of payload per op."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: Counter = Counter()
        self.bytes: Counter = Counter()
        self.log: list | None = None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if isinstance(func, torch._ops.HigherOrderOperator):
            return func(*args, **(kwargs or {}))
        if any(issubclass(t, _dtensor_type()) for t in types):
            return NotImplemented  # let DTensor turn the op into local ops and collectives, which come back here
        namespace = getattr(func, "namespace", "")
        name = func.overloadpacket.__name__ if hasattr(func, "overloadpacket") else str(func)
        if namespace in ("_c10d_functional", "c10d_functional", "c10d") and name in _COLLECTIVES:
            tensors = [t for t in _flat(args) if isinstance(t, torch.Tensor)]
            payload = sum(t.numel() * t.element_size() for t in tensors[:1] if namespace != "c10d") or \
                sum(t.numel() * t.element_size() for t in tensors)
            if any(g in name for g in _GATHERS) and namespace != "c10d":
                payload *= int(args[1])  # group size
            self.calls[name] += 1
            self.bytes[name] += payload
            if self.log is not None:
                self.log.append((name, [tuple(t.shape) for t in tensors], payload))
        return func(*args, **(kwargs or {}))

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


def _dtensor_type() -> type:
    from torch.distributed.tensor import DTensor

    return DTensor


def _flat(obj: Any):
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _flat(x)
    else:
        yield obj


def _settings(name: str) -> dict[str, Any]:
    import algorithms

    params = algorithms.REGISTRY[name].__init__.__code__.co_varnames
    out: dict[str, Any] = {"lr": 1e-3}
    if "rank" in params:
        out["rank"] = RANK
    if "max_rank" in params:
        out.update(max_rank=RANK, min_rank=2)
    for key in ("update_proj_gap", "max_steps_per_subspace"):
        if key in params:
            out[key] = GAP
    return out


def _measure(names: list[str], steps: int = 3, shapes=SHAPES) -> dict[str, Any]:
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    import algorithms

    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    gen = torch.Generator().manual_seed(0)
    full = {n: torch.randn(s, generator=gen) for n, s in shapes}
    grads = [{n: torch.randn(s, generator=gen) for n, s in shapes} for _ in range(steps)]
    out: dict[str, Any] = {}
    for name in names:
        params = {n: torch.nn.Parameter(distribute_tensor(v, mesh, [Shard(0)], src_data_rank=None)) for n, v in full.items()}
        opt = algorithms.make(name, list(params.values()), **_settings(name))
        per_step = []
        for step in range(steps):
            for n, p in params.items():
                p.grad = distribute_tensor(grads[step][n], mesh, [Shard(0)], src_data_rank=None)
            with CommCounter() as counter:
                opt.step()
            per_step.append({"bytes": counter.total_bytes, "calls": dict(counter.calls),
                             "bytes_by_op": dict(counter.bytes)})
        out[name] = {"settings": _settings(name), "steps": per_step}
    return out


def measure_steps(names: list[str], steps: int = 3, shapes=SHAPES) -> dict[str, Any]:
    """Per optimizer, the collectives of each of ``steps`` steps on ``shapes`` (run it on every rank)."""
    return _measure(names, steps, shapes)


def measure_on_ranks(names: list[str] | None = None, nproc: int = 2) -> dict[str, Any]:
    import algorithms
    from verify.oracle.distributed import run_on_ranks

    names = sorted(algorithms.REGISTRY) if names is None else names
    gathered = sum(4 * s[0] * s[1] for _, s in SHAPES if len(s) == 2)
    return {"world_size": nproc, "shapes": {n: list(s) for n, s in SHAPES}, "rank": RANK, "refresh_every": GAP,
            "dtype": "float32", "gather_all_weight_gradients_bytes": gathered,
            "optimizers": run_on_ranks(_measure, names, nproc=nproc, timeout=600)}


def _kib(n: int) -> str:
    return f"{n / 1024:.1f}"


def format_table(result: dict[str, Any]) -> str:
    lines = [f"payload per rank per `step()` on {result['world_size']} ranks, KiB (gathering every weight gradient: "
             f"{_kib(result['gather_all_weight_gradients_bytes'])} KiB)", "",
             "| optimizer | first step (builds every subspace) | a step without refresh | collectives of the first step |", "|---|---|---|---|"]
    for name, r in result["optimizers"].items():
        first = r["steps"][0]  # the first step builds every subspace
        quiet = min(r["steps"][1:], key=lambda s: s["bytes"])  # a step without a refresh (refresh every 3 steps)
        ops = ", ".join(f"{op} ×{n}" for op, n in sorted(first["calls"].items())) or "none"
        lines.append(f"| {name} | {_kib(first['bytes'])} | {_kib(quiet['bytes'])} | {ops} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify.comm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--only", action="append", metavar="NAME", help="only these optimizers (repeatable)")
    parser.add_argument("--write", default=None, help="write the measurement as JSON")
    args = parser.parse_args(argv)
    result = measure_on_ranks(args.only, args.nproc)
    print(format_table(result))
    if args.write:
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
