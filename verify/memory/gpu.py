"""Transient and peak optimizer memory on the GPU, per algorithm, on the LLaMA-60M-shaped model.

    OUT=/some/dir python -m verify.memory.gpu                      # every algorithm, CUDA
    python -m verify.memory.gpu --tiny --device cpu --out /tmp/x   # plumbing check (no CUDA stats)

For each registered algorithm with a memory formula the script builds :class:`synthetic.llama.Llama`
(GaLore's 60M shape, byte vocabulary 256, fp32 weights), routes the parameters as the memory tables do
(:func:`verify.memory.models.table_groups`: the paper's routing declared on the optimizer class), and runs
``--steps`` training steps on random tokens. Around every ``optimizer.step()`` it records

* ``before``: ``torch.cuda.memory_allocated()`` just before the step (weights + gradients + states);
* ``peak``: ``torch.cuda.max_memory_allocated()`` during the step (statistics reset just before it);
* ``after``: ``memory_allocated()`` after the step (+ newly created states on the first step);
* ``tensor_peak``: the net peak of tensor allocations that ATen sees during the same step
  (:class:`verify.memory.transient.AllocationTracker`); ``transient − tensor_peak`` is what the
  allocator adds (512-byte rounding) plus kernel workspaces (cuSOLVER, cuBLAS);

and reports the step's **transient** ``peak − before`` and its **peak above weights + gradients**
``peak − weights − grads``. Predictions come from the sympy formulas (verify/memory/formulas.py):
``states`` = the device-resident state terms (host counters and generator states excluded), also
rounded up per tensor to the caching allocator's 512-byte blocks; ``transient`` = the largest
per-parameter sum of documented temporaries. The measured state is also compared with the formula
*exactly* (walker vs formula, on the device). Decomposition workspaces of cuSOLVER/cuBLAS are not in
the formula; the difference is reported, not hidden.

Low-rank methods get ``update_proj_gap=3`` (AdaRankGrad ``max_steps_per_subspace=3``) so that both
refresh steps (SVD) and ordinary steps are measured within a few steps; ranks are GaLore Table 2's
128 (``--rank``). Everything is written to ``$OUT/gpu_memory.json`` (``--out`` overrides ``$OUT``).
Needs torch (and sympy, a torch dependency) and this repository; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from typing import Any

import torch

import algorithms
from synthetic.llama import Llama, LlamaConfig
from algorithms.grouping import routing_of
from verify.memory.formulas import FORMULAS, group_transient, param_memory
from verify.memory.measure import compare_state, runtime_quantities
from verify.memory.models import table_groups
from verify.memory.transient import AllocationTracker, state_tensors

__all__ = ["TINY", "ALLOCATOR_BLOCK", "EXTRA", "CudaProbe", "predicted", "measure_algorithm", "main"]

TINY = LlamaConfig(dim=64, layers=2, heads=4, ffn=176, max_seq=32)
#: the CUDA caching allocator rounds every allocation up to a multiple of 512 bytes
ALLOCATOR_BLOCK = 512

#: per-algorithm options besides the routing (short refresh periods so refreshes are measured)
EXTRA = {
    "galore_adamw": {"update_proj_gap": 3},
    "fira_adamw": {"update_proj_gap": 3},
    "subspace_momentum": {"update_proj_gap": 3},
    "adam_sn_sm": {"update_proj_gap": 3},
    "adarankgrad": {"max_steps_per_subspace": 3},
}


def _round_up(nbytes: int, block: int = ALLOCATOR_BLOCK) -> int:
    return 0 if nbytes == 0 else -(-nbytes // block) * block


def predicted(optimizer: torch.optim.Optimizer, name: str) -> dict[str, int]:
    """Formula predictions for the optimizer's current parameters (states on the device and transients)."""
    states = rounded = transient = 0
    for group in optimizer.param_groups:
        memories = []
        for p in group["params"]:
            device = "cuda" if p.device.type == "cuda" else "cpu"
            fm = param_memory(name, tuple(p.shape), group, runtime=runtime_quantities(optimizer, p), device=device)
            eb = p.element_size()
            memories.append((fm, eb))
            for term in fm.terms:
                if term.host:
                    continue
                nbytes = fm.count(term) * term.element_size(eb)
                states += nbytes
                rounded += _round_up(nbytes)
        transient = max(transient, group_transient(memories))  # groups step one after another
    return {"state_bytes": states, "state_bytes_allocator_rounded": rounded, "transient_bytes": transient}


class CudaProbe:
    """``torch.cuda`` memory statistics of one device (synchronizing first, so kernels have finished)."""

    def __init__(self, device: torch.device):
        self.device = device

    def allocated(self) -> int:
        torch.cuda.synchronize(self.device)
        return torch.cuda.memory_allocated(self.device)

    def reset_peak(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> int:
        torch.cuda.synchronize(self.device)
        return torch.cuda.max_memory_allocated(self.device)


def measure_algorithm(name: str, cfg: LlamaConfig, *, device: torch.device, steps: int, batch: int, rank: int,
                      seed: int, probe: Any | None = None) -> dict[str, Any]:
    """Run ``steps`` steps of ``name`` and record memory around every ``optimizer.step()``; ``probe``
    (``allocated()``, ``reset_peak()``, ``peak()``) defaults to :class:`CudaProbe` on CUDA and to none
    (no statistics) elsewhere."""
    torch.manual_seed(seed)
    model = Llama(cfg).to(device)
    groups = table_groups(name, model, rank, method_options=EXTRA.get(name))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        opt = algorithms.make(name, groups, lr=1e-4)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    gen = torch.Generator(device=device).manual_seed(seed + 1)
    if probe is None and device.type == "cuda":
        probe = CudaProbe(device)
    cuda = probe is not None
    records = []
    for step in range(1, steps + 1):
        tokens = torch.randint(0, cfg.vocab, (batch, cfg.max_seq + 1), generator=gen, device=device)
        opt.zero_grad(set_to_none=True)
        loss = model.loss(tokens)
        loss.backward()
        del loss
        grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
        before = probe.allocated() if cuda else None
        if cuda:
            probe.reset_peak()
        t0 = time.perf_counter()
        tracker = AllocationTracker(state_tensors(opt))
        with tracker:  # ATen-visible tensor allocations (no kernel workspaces, no allocator rounding)
            opt.step()
        peak = probe.peak() if cuda else None
        seconds = time.perf_counter() - t0
        after = probe.allocated() if cuda else None
        pred = predicted(opt, name)
        rec = {"step": step, "seconds": seconds, "weights_bytes": weights, "grads_bytes": grads,
               "before_bytes": before, "peak_bytes": peak, "after_bytes": after,
               "tensor_peak_bytes": tracker.peak, "tensor_end_bytes": tracker.current,
               **{f"predicted_{k}": v for k, v in pred.items()}}
        if cuda:
            rec["transient_bytes"] = peak - before
            rec["peak_above_weights_and_grads_bytes"] = peak - weights - grads
            rec["predicted_peak_above_weights_and_grads_bytes"] = pred["state_bytes_allocator_rounded"] + pred["transient_bytes"]
            rec["state_growth_bytes"] = after - before
        records.append(rec)
    cmp = compare_state(opt, name)
    steady = [r for r in records if r["step"] > 1]
    out: dict[str, Any] = {
        "algorithm": name,
        "routing": routing_of(name).rule,
        "groups": [{"size": len(g["params"]), **{k: v for k, v in g.items() if k not in ("params", "param_names")}}
                   for g in opt.param_groups],
        "state_exact": cmp.exact,
        "state_measured_bytes": cmp.measured_bytes,
        "state_formula_bytes": cmp.formula_bytes,
        "state_mismatches": [str(m) for m in cmp.mismatches][:20],
        "steps": records,
    }
    if cuda and steady:
        worst = max(steady, key=lambda r: r["transient_bytes"])
        first = records[0]
        out["summary"] = {
            "max_transient_bytes": worst["transient_bytes"],
            "max_tensor_peak_bytes": max(r["tensor_peak_bytes"] for r in steady),
            "workspace_and_rounding_bytes": worst["transient_bytes"] - worst["tensor_peak_bytes"],
            "predicted_transient_bytes": worst["predicted_transient_bytes"],
            "transient_ratio_measured_to_predicted": (worst["transient_bytes"] / worst["predicted_transient_bytes"]
                                                      if worst["predicted_transient_bytes"] else None),
            "max_peak_above_weights_and_grads_bytes": max(r["peak_above_weights_and_grads_bytes"] for r in steady),
            "predicted_peak_above_weights_and_grads_bytes": worst["predicted_peak_above_weights_and_grads_bytes"],
            "first_step_state_growth_bytes": first["state_growth_bytes"],
            "predicted_state_bytes_allocator_rounded": first["predicted_state_bytes_allocator_rounded"],
        }
    del opt, model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.environ.get("OUT"), help="output directory (default: $OUT)")
    ap.add_argument("--algorithms", default=None, help="comma-separated registry names (default: all with a formula)")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model (plumbing check)")
    args = ap.parse_args(argv)
    if not args.out:
        raise SystemExit("--out or $OUT is required")
    cfg = TINY if args.tiny else LlamaConfig()
    rank = min(args.rank, cfg.dim)
    names = args.algorithms.split(",") if args.algorithms else [n for n in sorted(algorithms.REGISTRY) if n in FORMULAS]
    unknown = [n for n in names if n not in algorithms.REGISTRY or n not in FORMULAS]
    if unknown:
        raise SystemExit(f"--algorithms: no registered optimizer with a memory formula: {unknown}")
    device = torch.device(args.device)
    results, errors = [], {}
    for name in names:
        try:
            results.append(measure_algorithm(name, cfg, device=device, steps=args.steps, batch=args.batch, rank=rank,
                                             seed=args.seed))
        except Exception as exc:  # one failing algorithm must not hide the others' numbers
            errors[name] = f"{type(exc).__name__}: {exc}"
        r = results[-1] if results and results[-1]["algorithm"] == name else None
        if r is None:
            print(f"{name:<22} ERROR {errors[name]}", flush=True)
        elif "summary" in r:
            s = r["summary"]
            print(f"{name:<22} state exact {r['state_exact']!s:<5} states {r['state_formula_bytes'] / 2**20:8.2f} MiB  "
                  f"transient {s['max_transient_bytes'] / 2**20:8.2f} MiB (predicted {s['predicted_transient_bytes'] / 2**20:8.2f})  "
                  f"peak-W-G {s['max_peak_above_weights_and_grads_bytes'] / 2**20:8.2f} MiB "
                  f"(predicted {s['predicted_peak_above_weights_and_grads_bytes'] / 2**20:8.2f})", flush=True)
        else:
            print(f"{name:<22} state exact {r['state_exact']} (no CUDA statistics on {device.type})", flush=True)
    meta = {
        "config": {k: getattr(cfg, k) for k in ("vocab", "dim", "layers", "heads", "ffn", "max_seq")},
        "args": vars(args), "rank": rank, "torch": torch.__version__, "python": platform.python_version(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "allocator_block_bytes": ALLOCATOR_BLOCK,
        "weights": "fp32, no autocast; random tokens; lr 1e-4",
        "routing": "the paper routing declared on each optimizer class (algorithms.grouping.paper_param_groups)",
    }
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_memory.json")
    with open(path, "w") as fh:
        json.dump({"meta": meta, "results": results, "errors": errors}, fh, indent=1)
    print(f"wrote {path}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
