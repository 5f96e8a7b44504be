"""Train the LLaMA-60M-shaped byte model on the HMM language with each reference optimizer.

    python -m paper_checks.gpu_lm.train --out DIR [--optimizers adam,galore_adamw,...] [--steps N]
    python -m paper_checks.gpu_lm.train --tiny --device cpu --steps 3 --out /tmp/x   # plumbing check
    torchrun --standalone --nproc_per_node 8 -m paper_checks.gpu_lm.train --out DIR   # DDP, one GPU per rank
    torchrun --standalone --nproc_per_node 2 -m paper_checks.gpu_lm.train --tiny --device cpu --batch 4 ...  # gloo

**Under torchrun** (``WORLD_SIZE`` > 1) the model is wrapped in DDP (``nccl`` on CUDA, each rank on
``cuda:LOCAL_RANK``; ``gloo`` on CPU). Every rank draws the same global batch of ``--batch`` sequences
and trains on its ``batch / world`` slice, so a DDP run sees the data of the single-process run and
equals it up to the round-off of gradient averaging. After training the ranks compare their
parameters bit for bit (``replicas_identical`` in the results); only rank 0 prints and writes.

Protocol (fixed for every optimizer): same model init, same data stream
(fresh HMM samples each step from a seeded generator, so no epoch/overfitting effects), batch
``--batch`` × 256 tokens, linear warmup then cosine decay to 10 %, global gradient clipping at 1.0
for every method (stated, since the official recipes differ), bf16 autocast on CUDA with fp32
master weights and fp32 optimizer states. Each method's parameter routing follows its paper
(see :mod:`.recipes`). Evaluation on a fixed held-out stream; the optimal loss ``H*`` of that
stream is computed exactly, and every record reports ``loss − H*``.

Output: ``DIR/gpu_lm.json`` with per-optimizer curves, final gap, step time and peak memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import contextlib
import json
import math
import os
import platform
import time
import zlib

import torch
import torch.nn as nn

from .data import HMMLanguage, HMMSpec
from synthetic.llama import Llama, LlamaConfig
from .recipes import RECIPES, build_optimizer

TINY = LlamaConfig(dim=64, layers=2, heads=4, ffn=176)


class _Loss(nn.Module):
    """The model's loss as a module, so that DDP's forward hook (gradient synchronisation) sees it."""

    def __init__(self, model: Llama) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.loss(tokens)


def distributed_setup(device: str) -> tuple[int, int, str]:
    """``(rank, world, device)``: initialises the process group under torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    import torch.distributed as dist

    rank = int(os.environ["RANK"])
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return rank, world, device


def replicas_identical(model: nn.Module) -> bool:
    """Every rank holds bit-identical parameters (CRC of each parameter's bytes, gathered)."""
    import torch.distributed as dist

    crcs = [zlib.crc32(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes()) for p in model.parameters()]
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, crcs)
    return all(c == everyone[0] for c in everyone)


def lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate(model: Llama, eval_tokens: torch.Tensor, batch: int, autocast) -> float:
    model.eval()
    total, count = 0.0, 0
    for i in range(0, eval_tokens.shape[0], batch):
        chunk = eval_tokens[i : i + batch]
        with autocast():
            loss = model.loss(chunk)
        total += float(loss) * chunk.shape[0]
        count += chunk.shape[0]
    model.train()
    return total / count


@torch.no_grad()
def gradient_rank_summary(model: Llama) -> dict:
    """Stable rank and energy rank r(0.01) of every block linear weight's gradient (synthetic.spectrum),
    measured on the raw gradient before clipping; per layer and the median over layers."""
    from algorithms.grouping import split_parameters
    from synthetic.spectrum import layer_spectra

    lowrank, _ = split_parameters(model, "attn_mlp")
    spectra = layer_spectra(((n, p.grad) for n, p in lowrank if p.grad is not None), eps=(0.01,))
    per_layer = {n: {"stable_rank": row["stable_rank"], "energy_rank": row["energy_rank"]} for n, row in spectra.items()}
    srs = sorted(float(v["stable_rank"]) for v in per_layer.values())
    return {"median_stable_rank": srs[len(srs) // 2] if srs else None, "layers": per_layer}


def train_one(name: str, args, lang: HMMLanguage, eval_tokens: torch.Tensor, h_star: float, cfg: LlamaConfig) -> dict:
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    model = Llama(cfg).to(device)
    opt, routing = build_optimizer(name, model, rank=args.rank)
    loss_fn: nn.Module = _Loss(model)
    if args.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        loss_fn = DistributedDataParallel(loss_fn, device_ids=[device] if device.type == "cuda" else None)
    per_rank = args.batch // args.world
    base_lrs = [g["lr"] for g in opt.param_groups]
    data_gen = torch.Generator(device=device).manual_seed(args.seed + 1)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if device.type == "cuda" else contextlib.nullcontext
    curve = []
    grad_ranks = []
    step_times = []
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    diverged = False
    for step in range(args.steps):
        for g, lr0 in zip(opt.param_groups, base_lrs):
            g["lr"] = lr0 * lr_factor(step, args.steps, args.warmup)
        tokens = lang.sample(args.batch, cfg.max_seq + 1, data_gen)[args.rank_id * per_rank:(args.rank_id + 1) * per_rank]
        t0 = time.perf_counter()
        with autocast():
            loss = loss_fn(tokens)
        loss.backward()
        if args.grad_rank_every and (step == 0 or (step + 1) % args.grad_rank_every == 0):
            grad_ranks.append({"step": step + 1, **gradient_rank_summary(model)})
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        step_times.append(time.perf_counter() - t0)
        if not math.isfinite(float(loss)):
            diverged = True
            break
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            ev = evaluate(model, eval_tokens, args.batch, autocast)
            curve.append({"step": step + 1, "train_loss": float(loss), "eval_loss": ev, "gap": ev - h_star})
            if args.rank_id == 0:
                print(f"  {name:<14} step {step + 1:>5}  train {float(loss):.4f}  eval {ev:.4f}  gap {ev - h_star:.4f}",
                      flush=True)
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else None
    state_bytes = sum(
        v.numel() * v.element_size() for st in opt.state.values() for v in st.values() if isinstance(v, torch.Tensor)
    )
    times = sorted(step_times[5:]) or sorted(step_times)
    return {
        "optimizer": name,
        "routing": routing,
        "hyper": RECIPES[name]["hyper"],
        "lr": RECIPES[name]["lr"],
        "curve": curve,
        "grad_rank": grad_ranks,
        "final_eval_loss": curve[-1]["eval_loss"] if curve else None,
        "final_gap": curve[-1]["gap"] if curve else None,
        "diverged": diverged,
        "median_step_s": times[len(times) // 2],
        "peak_allocated_bytes": peak,
        "optimizer_state_bytes": state_bytes,
        "world_size": args.world,
        "replicas_identical": replicas_identical(model) if args.world > 1 else None,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--optimizers", default=",".join(RECIPES))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--warmup", type=int, default=60)
    ap.add_argument("--eval-every", type=int, default=100)
    ap.add_argument("--eval-seqs", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="a 2-layer model for plumbing checks on CPU")
    ap.add_argument("--rank", type=int, default=None, help="override every recipe's rank (tiny models)")
    ap.add_argument("--grad-rank-every", type=int, default=0, help="record layer-gradient ranks every N steps (0: off)")
    args = ap.parse_args(argv)
    args.rank_id, args.world, args.device = distributed_setup(args.device)
    if args.batch % args.world:
        raise SystemExit(f"--batch {args.batch} must be divisible by the number of ranks {args.world}")
    cfg = TINY if args.tiny else LlamaConfig()
    lang = HMMLanguage(HMMSpec(), device=args.device)
    eval_gen = torch.Generator(device=args.device).manual_seed(999)
    eval_tokens = lang.sample(args.eval_seqs, cfg.max_seq + 1, eval_gen)
    h_star = lang.optimal_loss(eval_tokens)
    if args.rank_id == 0:
        print(f"H* (optimal eval loss) = {h_star:.4f} nats/byte", flush=True)
    meta = {
        "h_star": h_star,
        "config": dataclasses.asdict(cfg),
        "args": vars(args),
        "torch": torch.__version__,
        "device_name": torch.cuda.get_device_name() if torch.cuda.is_available() and args.device.startswith("cuda") else platform.processor(),
        "tuning": "none: every recipe uses its paper's (or the stated) settings; see paper_checks/gpu_lm/recipes.py",
    }
    os.makedirs(args.out, exist_ok=True)
    results = []
    for name in args.optimizers.split(","):
        if name not in RECIPES:
            raise SystemExit(f"--optimizers: unknown recipe {name!r}; known: {sorted(RECIPES)}")
        t0 = time.perf_counter()
        res = train_one(name, args, lang, eval_tokens, h_star, cfg)
        res["wall_s"] = time.perf_counter() - t0
        res["source"] = RECIPES[name]["source"]
        results.append(res)
        # written after every optimizer, so a run stopped by a time limit keeps what it finished
        if args.rank_id == 0:
            with open(os.path.join(args.out, "gpu_lm.json"), "w") as fh:
                json.dump({"meta": meta, "results": results}, fh, indent=2, default=str)
    if args.world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    if args.rank_id:
        return 0
    print(f"{'optimizer':<14} {'final eval':>10} {'gap':>8} {'ms/step':>8} {'state MB':>9} {'peak MB':>8}")
    for r in results:
        peak = r["peak_allocated_bytes"]
        print(
            f"{r['optimizer']:<14} {r['final_eval_loss'] or float('nan'):>10.4f} {r['final_gap'] or float('nan'):>8.4f} "
            f"{1e3 * r['median_step_s']:>8.1f} {r['optimizer_state_bytes'] / 2**20:>9.1f} "
            f"{(peak or 0) / 2**20:>8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
