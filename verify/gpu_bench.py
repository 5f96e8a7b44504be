r"""GPU step time, memory and training throughput of every optimizer, side by side (``verify bench --gpu``).

Measured in one process on one device, for the parameter shapes of GaLore's LLaMA-60M and LLaMA-350M
configurations (vocab 32000), fp32 parameters, fixed gradients, each method with its paper's routing
(:func:`algorithms.grouping.paper_param_groups`, rank 128 / 256, refresh gap 200):

* **step time**: CUDA-event median over steady steps (no subspace refresh), the refresh step itself (the
  slowest of steps T−1 … T+2, so an implementation that refreshes a step early is timed too), and the
  step **amortized over one refresh period** ``steady + (refresh − steady)/T``;
* **baselines**: torch AdamW (fused, foreach, for-loop); the third-party implementations that are
  installed (galore-torch, fira, pytorch-optimizer's GaLore/Fira/MARS/AdamWSN, lion-pytorch), with the
  same routing and rank;
* **the memory-bound floor**: the bytes a step must move at least (parameters read and written, the
  gradient read, every state tensor read and written) over the device's measured copy bandwidth
  (AdamW in fp32: 28 bytes per parameter). Projected methods also multiply matrices, so for them the
  floor is a lower bound only;
* **both paths of ours**: every optimizer on its reference path (``fast=False``, the row named by the
  registry name) and, where the class has one, on its fast path (``fast=True``, the row ``"<name> (fast)"``),
  timed one after the other on the same model and gradients;
* **peak memory** of a step above the parameters and gradients;
* **training throughput** of the 60M model (bf16 autocast, tokens/s) with each optimizer against fused
  AdamW, and the fraction of the step spent in ``optimizer.step()``.

Nothing here asserts a number: it writes ``results/bench/gpu_step.json`` (device named) and a Markdown
table. On a CPU (``device="cpu"``, tiny shapes) it runs the same code for the tests.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import platform
import statistics
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

import algorithms
from algorithms.grouping import paper_param_groups, split_parameters

__all__ = ["CONFIGS", "SETTINGS", "FAST_SUFFIX", "our_labels", "bench_optimizers", "bench_training", "copy_bandwidth",
           "run", "markdown"]


@dataclass(frozen=True)
class ModelShape:
    name: str
    vocab: int
    dim: int
    layers: int
    heads: int
    ffn: int
    rank: int


#: GaLore's LLaMA configurations (configs/llama_60m.json, llama_350m.json) and their paper ranks
CONFIGS = {
    "llama-60m": ModelShape("llama-60m", 32000, 512, 8, 8, 1376, 128),
    "llama-350m": ModelShape("llama-350m", 32000, 1024, 24, 16, 2736, 256),
    "small": ModelShape("small", 4096, 256, 4, 4, 688, 32),  # the CPU step table (5.3M parameters)
    "tiny": ModelShape("tiny", 256, 64, 2, 4, 176, 8),  # the CPU test shape
}
REFRESH_GAP = 200

#: per registered optimizer: (learning rate, constructor kwargs, group options with "RANK" for the rank)
SETTINGS: dict[str, tuple[float, dict[str, Any], dict[str, Any]]] = {
    "adam": (1e-3, {}, {}),
    "sgd": (1e-2, {"momentum": 0.9}, {}),
    "lion": (1e-4, {}, {}),
    "adagrad_norm": (1e-2, {}, {}),
    "adagrad_coordinate": (1e-2, {}, {}),
    "adagrad_subset_norm": (1e-2, {}, {"subset_size": "heuristics"}),
    "adam_sn": (5e-2, {}, {"subset_size": "heuristics"}),
    "rmsprop_sn": (5e-2, {}, {"subset_size": "heuristics"}),
    "subspace_momentum": (5e-2, {}, {"rank": "RANK", "update_proj_gap": REFRESH_GAP}),
    "adam_sn_sm": (5e-2, {}, {"rank": "RANK", "update_proj_gap": REFRESH_GAP, "subset_size": "heuristics"}),
    "galore_adamw": (1e-2, {"variant": "official"}, {"rank": "RANK", "update_proj_gap": REFRESH_GAP, "scale": 0.25}),
    "fira_adamw": (1e-2, {"variant": "official"}, {"rank": "RANK", "update_proj_gap": REFRESH_GAP, "scale": 0.25}),
    "ldadam": (1e-3, {"variant": "official"}, {"rank": "RANK"}),
    "adarankgrad": (1e-2, {}, {"max_rank": "RANK", "min_rank": 8, "max_steps_per_subspace": REFRESH_GAP}),
    "mars_adamw": (6e-3, {"variant": "official"}, {}),
    "mars_lion": (1e-4, {"variant": "official"}, {}),
    "mars_shampoo": (3e-3, {"variant": "official"}, {}),
}


#: the label suffix of a fast-path row (``fast=True``)
FAST_SUFFIX = " (fast)"
#: our paths: the ``fast=`` value and the row label's suffix
PATHS: dict[str, tuple[bool | str, str]] = {"reference": (False, ""), "fast": (True, FAST_SUFFIX),
                                            "compile": ("compile", " (compile)")}
#: the methods whose fast path has compiled parts (algorithms/_compiled.py): the only ones given "(compile)" rows
COMPILED = ("adam", "sgd", "lion", "adagrad_norm", "adagrad_coordinate", "adagrad_subset_norm", "adam_sn", "rmsprop_sn")


def our_labels(names: Iterable[str], paths: Iterable[str] = ("reference", "fast")) -> list[str]:
    """Each registry name on each path: ``name`` (reference), ``"<name> (fast)"``, ``"<name> (compile)"`` (the
    elementwise methods only)."""
    labels = []
    for name in names:
        for path in paths:
            if path == "reference" or (algorithms.REGISTRY[name].has_fast_path and (path != "compile" or name in COMPILED)):
                labels.append(name + PATHS[path][1])
    return labels


def _parse_label(label: str) -> tuple[str, str]:
    """``(registry name, path)`` of one of our row labels."""
    for path, (_, suffix) in PATHS.items():
        if suffix and label.endswith(suffix):
            return label[: -len(suffix)], path
    return label, "reference"


def build_model(shape: ModelShape, device: str) -> nn.Module:
    from synthetic.llama import Llama, LlamaConfig

    cfg = LlamaConfig(vocab=shape.vocab, dim=shape.dim, layers=shape.layers, heads=shape.heads, ffn=shape.ffn)
    return Llama(cfg).to(device)


def _groups_for(name: str, model: nn.Module, rank: int) -> list[dict]:
    _, _, group = SETTINGS[name]
    options = {k: (min(rank, v) if k == "min_rank" else (rank if v == "RANK" else v)) for k, v in group.items()}
    return paper_param_groups(name, model, **options)


def make_ours(label: str, model: nn.Module, rank: int) -> torch.optim.Optimizer:
    """Our optimizer for a row label: the registry name (reference path) or ``"<name> (fast)"`` (``fast=True``)."""
    name, path = _parse_label(label)
    lr, hyper, _ = SETTINGS[name]
    return algorithms.make(name, _groups_for(name, model, rank), lr=lr, fast=PATHS[path][0], **hyper)


def _routed_groups(model: nn.Module, lowrank: dict[str, Any], dense: dict[str, Any] | None = None) -> list[dict]:
    """The two groups the third-party and authors' training scripts build: the block matrices with the method's
    options ``lowrank``, the rest with ``dense``."""
    lowrank_params, dense_params = split_parameters(model, "attn_mlp")
    return [{"params": [p for _, p in lowrank_params], **lowrank}, {"params": [p for _, p in dense_params], **(dense or {})}]


def _third_party_groups(model: nn.Module, rank: int, key: str, extra: dict) -> list[dict]:
    return _routed_groups(model, {key: rank, "update_proj_gap": REFRESH_GAP, **extra})


def third_party(model: nn.Module, rank: int) -> dict[str, Callable[[], torch.optim.Optimizer]]:
    """Factories of the installed third-party optimizers, routed like ours (low-rank groups on the block matrices)."""
    from verify.oracle.candidates import load_candidate

    params = list(model.parameters())
    out: dict[str, Callable[[], torch.optim.Optimizer]] = {
        "torch AdamW fused": lambda: torch.optim.AdamW(params, lr=1e-3, fused=True),
        "torch AdamW foreach": lambda: torch.optim.AdamW(params, lr=1e-3, foreach=True),
        "torch AdamW for-loop": lambda: torch.optim.AdamW(params, lr=1e-3, foreach=False),
    }
    candidates = {
        "galore-torch GaLoreAdamW": ("galore_torch:GaLoreAdamW", ("transformers", "bitsandbytes"),
                                     lambda cls: cls(_third_party_groups(model, rank, "rank", {"scale": 0.25, "proj_type": "std"}),
                                                     lr=1e-2, no_deprecation_warning=True)),
        "fira FiraAdamW": ("fira:FiraAdamW", ("transformers", "bitsandbytes"),
                           lambda cls: cls(_third_party_groups(model, rank, "rank", {"alpha": 0.25, "proj_type": "std"}),
                                           lr=1e-2, no_deprecation_warning=True)),
        "pytorch-optimizer GaLore": ("pytorch_optimizer:GaLore", (),
                                     lambda cls: cls(_third_party_groups(model, rank, "rank",
                                                                         {"scale": 0.25, "projection_type": "std"}), lr=1e-2)),
        "pytorch-optimizer Fira": ("pytorch_optimizer:Fira", (),
                                   lambda cls: cls(_third_party_groups(model, rank, "rank",
                                                                       {"scale": 0.25, "projection_type": "std"}), lr=1e-2)),
        "pytorch-optimizer MARS": ("pytorch_optimizer:MARS", (), lambda cls: cls(params, lr=6e-3)),
        "pytorch-optimizer AdamWSN": ("pytorch_optimizer:AdamWSN", (),
                                      lambda cls: cls([{"params": params, "sn": True}], lr=5e-2)),
        "lion-pytorch Lion": ("lion_pytorch:Lion", (), lambda cls: cls(params, lr=1e-4)),
    }
    for label, (spec, stubs, build) in candidates.items():
        try:
            cls = load_candidate(spec, stub_missing=stubs)
        except Exception as exc:  # not installed here: recorded as skipped, never faked
            out[label] = exc
            continue
        out[label] = (lambda cls=cls, build=build: build(cls))
    out.update(authors_code(model, rank))
    return out


#: the authors' repositories (verify/oracle/authors.py): label -> (key, module, class, builder(cls, model, rank))
AUTHORS_ROWS: dict[str, tuple[str, str, str, Callable[..., torch.optim.Optimizer]]] = {
    "authors MARS (mars-adamw)": ("mars", "mars", "MARS", lambda cls, model, rank: cls(list(model.parameters()), lr=6e-3)),
    "authors MARS (mars-lion)": ("mars", "mars", "MARS",
                                 lambda cls, model, rank: cls(list(model.parameters()), lr=1e-4, mars_type="mars-lion")),
    "authors MARS (mars-shampoo)": ("mars", "mars", "MARS",
                                    lambda cls, model, rank: cls(list(model.parameters()), lr=3e-3,
                                                                 mars_type="mars-shampoo")),
    "authors LDAdamW": ("ldadam", "ldadamw_torch", "LDAdamW",
                        lambda cls, model, rank: cls(_routed_groups(model, {"enable_lowrank": True},
                                                                    {"enable_lowrank": False}), lr=1e-3, rank=rank)),
    "authors GenericOptim (adamw_sn)": ("sn_sm", "GenericOptim", "GenericOptim",
                                        lambda cls, model, rank: cls(_routed_groups(model, {"subset_size": "heuristics"}),
                                                                     lr=5e-2, momentum_type="ema", second_moment_type="sn")),
    "authors GenericOptim SM (adamw_sn_sm)": ("sn_sm", "GenericOptim", "GenericOptim",
                                              lambda cls, model, rank: cls(
                                                  _third_party_groups(model, rank, "rank",
                                                                      {"subset_size": "heuristics", "proj_type": "svd"}),
                                                  lr=5e-2, momentum_type="sm", second_moment_type="sn")),
}


def authors_code(model: nn.Module, rank: int) -> dict[str, Any]:
    """Factories of the authors' own optimizers found under ``.authors/`` (skipped rows, with the reason, if absent)."""
    from verify.oracle.authors import commit_of, imported

    out: dict[str, Any] = {}
    for label, (key, module, attr, build) in AUTHORS_ROWS.items():
        try:
            with imported(key) as modules:
                cls = getattr(modules[module], attr)
        except Exception as exc:  # no checkout here: a skipped row, never a fake
            out[label] = exc
            continue

        def make(cls=cls, build=build):
            with contextlib.redirect_stdout(io.StringIO()):  # GenericOptim prints its configuration
                return build(cls, model, rank)

        make.commit = commit_of(key)  # type: ignore[attr-defined]
        out[label] = make
    return out


def copy_bandwidth(device: str, mib: int = 1024) -> float:
    """Bytes per second of a large device-to-device copy (bytes read + bytes written), median of 10."""
    n = mib * 2**20 // 4
    a = torch.randn(n, device=device)
    b = torch.empty_like(a)
    times = []
    for _ in range(12):
        t0 = _now(device)
        b.copy_(a)
        times.append(_elapsed(device, t0))
    return 2 * a.numel() * 4 / statistics.median(times[2:])


def _now(device: str):
    if device.startswith("cuda"):
        start = torch.cuda.Event(enable_timing=True)
        start.record()
        return start
    return time.perf_counter()


def _elapsed(device: str, start) -> float:
    if device.startswith("cuda"):
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    return time.perf_counter() - start


def _state_bytes(opt: torch.optim.Optimizer) -> int:
    total = 0
    for state in opt.state.values():
        for v in state.values():
            tensors = [v] if isinstance(v, torch.Tensor) else [
                a for a in getattr(v, "__dict__", {}).values() if isinstance(a, torch.Tensor)]  # e.g. a projector object
            total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def _set_grads(model: nn.Module, seed: int) -> None:
    gen = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    for p in model.parameters():
        p.grad = torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype) * 1e-2


def time_steps(make: Callable[[], torch.optim.Optimizer], model: nn.Module, device: str, *, steady: int,
               refresh_gap: int | None) -> dict[str, Any]:
    """Steady median, the refresh step (the first step after ``refresh_gap`` steps) and peak memory."""
    opt = make()
    _set_grads(model, 0)
    base = torch.cuda.memory_allocated() if device.startswith("cuda") else 0
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    first = _now(device)
    opt.step()  # the first step builds the state and the first subspace (a refresh)
    first_time = _elapsed(device, first)
    times = []
    for _ in range(steady + 2):
        t0 = _now(device)
        opt.step()
        times.append(_elapsed(device, t0))
    steady_time = statistics.median(times[2:])
    peak = (torch.cuda.max_memory_allocated() - base) if device.startswith("cuda") else None
    out = {"steady_s": steady_time, "first_step_s": first_time, "state_bytes": _state_bytes(opt),
           "peak_step_bytes_above_params_grads": peak}
    if refresh_gap:
        done = 1 + len(times)
        for _ in range(max(0, refresh_gap - 2 - done)):
            opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        window = []  # steps T-1 .. T+2: an implementation that refreshes a step early or late is still caught
        for _ in range(4):
            t0 = _now(device)
            opt.step()
            window.append(_elapsed(device, t0))
        refresh = max(window)
        out.update(refresh_step_s=refresh, refresh_step=refresh_gap - 1 + window.index(refresh),
                   amortized_s=steady_time + (refresh - steady_time) / refresh_gap)
    else:
        out["amortized_s"] = steady_time
    del opt
    return out


def _refresh_gap(name: str) -> int | None:
    return REFRESH_GAP if name in ("galore_adamw", "fira_adamw", "subspace_momentum", "adam_sn_sm", "adarankgrad") else None


def bench_optimizers(shape: ModelShape, device: str, *, names: Iterable[str] | None = None, steady: int = 20,
                     third_parties: bool = True, bandwidth: float | None = None,
                     paths: Iterable[str] = ("reference", "fast")) -> list[dict[str, Any]]:
    model = build_model(shape, device)
    n_params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    rows = []
    entries: dict[str, Any] = {label: (lambda label=label: make_ours(label, model, shape.rank))
                               for label in our_labels(names or SETTINGS, paths)}
    if third_parties:
        entries.update(third_party(model, shape.rank))
    for label, make in entries.items():
        name, path = _parse_label(label)
        ours = name in SETTINGS
        row: dict[str, Any] = {"optimizer": label, "ours": ours, "model": shape.name, "params": n_params}
        if ours:
            row["path"] = path
        if getattr(make, "commit", None):
            row["source_commit"] = make.commit  # the authors' repository, as checked out
        if isinstance(make, Exception):
            row.update(skipped=f"{type(make).__name__}: {make}")
            rows.append(row)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                row.update(time_steps(make, model, device, steady=steady,
                                      refresh_gap=_refresh_gap(name) if ours
                                      else (REFRESH_GAP if any(k in label for k in ("GaLore", "Fira", "SM ")) else None)))
        except Exception as exc:  # a failure is a row with its reason, never a silent omission
            row.update(error=f"{type(exc).__name__}: {exc}")
        if "state_bytes" in row and bandwidth:
            moved = 2 * param_bytes + param_bytes + 2 * row["state_bytes"]  # p read+write, grad read, state read+write
            row.update(floor_bytes=moved, floor_s=moved / bandwidth, steady_over_floor=row["steady_s"] / (moved / bandwidth))
        rows.append(row)
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return rows


def bench_training(shape: ModelShape, device: str, *, names: Iterable[str] | None = None, steps: int = 20,
                   batch: int = 32, seq: int = 256, paths: Iterable[str] = ("reference", "fast")) -> list[dict[str, Any]]:
    """Tokens/s of forward + backward + step (bf16 autocast on CUDA) and the optimizer's share of the step."""
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    tokens = torch.randint(0, shape.vocab, (batch, seq + 1), generator=gen).to(device)
    labels = ["torch AdamW fused"] + our_labels(names or SETTINGS, paths)
    for label in labels:
        torch.manual_seed(0)
        model = build_model(shape, device)
        try:
            opt = (torch.optim.AdamW(model.parameters(), lr=1e-3, fused=device.startswith("cuda"))
                   if label == "torch AdamW fused" else make_ours(label, model, shape.rank))
            autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.startswith("cuda") else torch.autocast(
                "cpu", enabled=False)
            total, in_step = [], []
            for i in range(steps + 3):
                t0 = _now(device)
                with autocast:
                    loss = model.loss(tokens)
                loss.backward()
                t1 = _now(device)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    opt.step()
                s = _elapsed(device, t1)
                opt.zero_grad(set_to_none=True)
                t = _elapsed(device, t0)
                if i >= 3:
                    total.append(t)
                    in_step.append(s)
            step_time = statistics.median(total)
            rows.append({"optimizer": label, "model": shape.name, "tokens_per_s": batch * seq / step_time,
                         "step_s": step_time, "optimizer_fraction": statistics.median(in_step) / step_time,
                         "final_loss": float(loss)})
        except Exception as exc:
            rows.append({"optimizer": label, "model": shape.name, "error": f"{type(exc).__name__}: {exc}"})
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    base = next((r for r in rows if r["optimizer"] == "torch AdamW fused" and "tokens_per_s" in r), None)
    for r in rows:
        if base and "tokens_per_s" in r:
            r["throughput_vs_fused_adamw"] = r["tokens_per_s"] / base["tokens_per_s"]
    return rows


def run(device: str = "cuda", models: Iterable[str] = ("llama-60m", "llama-350m"), *, steady: int = 20,
        train_model: str | None = "llama-60m", train_steps: int = 20, names: Iterable[str] | None = None,
        paths: Iterable[str] = ("reference", "fast"), third_parties: bool = True) -> dict:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("verify bench --gpu: no CUDA device here (torch.cuda.is_available() is False)")
    paths = tuple(paths)
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise ValueError(f"paths: unknown {unknown}; valid: {', '.join(PATHS)}")
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 as the references compute it
    bandwidth = copy_bandwidth(device, 1024 if device.startswith("cuda") else 64)
    meta = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or "cpu",
            "torch": torch.__version__, "copy_bandwidth_bytes_per_s": bandwidth, "refresh_gap": REFRESH_GAP,
            "gradients": "fixed random gradients (N(0, 1e-4)), fp32 parameters, tf32 off",
            "routing": "algorithms.grouping.paper_param_groups; third parties: block matrices low-rank",
            "paths": list(paths), "third_parties": third_parties}
    steps = [row for m in models for row in bench_optimizers(CONFIGS[m], device, names=names, steady=steady,
                                                              bandwidth=bandwidth, paths=paths,
                                                              third_parties=third_parties)]
    training = (bench_training(CONFIGS[train_model], device, names=names, steps=train_steps, paths=paths)
                if train_model else [])
    return {"meta": meta, "step": steps, "fast_speedups": fast_speedups(steps), "training": training}


def merge(parts: list[dict]) -> dict:
    """One result from several runs of :func:`run` (e.g. one device call per model): the rows concatenated
    in order, the first part's meta with every part's meta under ``"parts"``. The parts must name one device
    and one torch (``ValueError`` otherwise); a row (model, optimizer) measured twice is an error."""
    if not parts:
        raise ValueError("merge: no parts")
    devices = {(p["meta"]["device"], p["meta"]["torch"]) for p in parts}
    if len(devices) != 1:
        raise ValueError(f"merge: the parts were measured on different devices or torch versions: {sorted(devices)}")
    steps = [row for p in parts for row in p["step"]]
    training = [row for p in parts for row in p["training"]]
    for kind, rows in (("step", steps), ("training", training)):
        keys = [(r["model"], r["optimizer"]) for r in rows]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"merge: {kind} rows measured in more than one part: {repeated}")
    meta = dict(parts[0]["meta"])
    meta["parts"] = [p["meta"] for p in parts]
    return {"meta": meta, "step": steps, "fast_speedups": fast_speedups(steps), "training": training}


def _fmt_ms(v) -> str:
    return f"{1e3 * v:.2f}" if isinstance(v, (int, float)) and math.isfinite(v) else "—"


def fast_speedups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model, optimizer and non-reference path timed next to the reference: both step times and their ratios."""
    timed = {(r["model"], r["optimizer"]): r for r in rows if "steady_s" in r}
    out = []
    for (model, label), row in timed.items():
        name, path = _parse_label(label)
        if path == "reference" or not row.get("ours") or (model, name) not in timed:
            continue
        ref = timed[(model, name)]
        out.append({"model": model, "optimizer": name, "path": path, "reference_steady_s": ref["steady_s"],
                    "fast_steady_s": row["steady_s"], "steady_speedup": ref["steady_s"] / row["steady_s"],
                    "reference_amortized_s": ref["amortized_s"], "fast_amortized_s": row["amortized_s"],
                    "amortized_speedup": ref["amortized_s"] / row["amortized_s"]})
    return out


#: per optimizer of ours, the row of the authors' (or the closest third-party) implementation it is compared with
#: per method, the comparison rows in order of preference: the authors' own code first, then a third-party package
AUTHORS: dict[str, tuple[str, ...]] = {
    "adam": ("torch AdamW fused",),
    "galore_adamw": ("galore-torch GaLoreAdamW",),
    "fira_adamw": ("fira FiraAdamW",),
    "mars_adamw": ("authors MARS (mars-adamw)", "pytorch-optimizer MARS"),
    "mars_lion": ("authors MARS (mars-lion)",),
    "mars_shampoo": ("authors MARS (mars-shampoo)",),
    "ldadam": ("authors LDAdamW",),
    "adam_sn": ("authors GenericOptim (adamw_sn)", "pytorch-optimizer AdamWSN"),
    "adam_sn_sm": ("authors GenericOptim SM (adamw_sn_sm)",),
    "lion": ("lion-pytorch Lion",),
}


def _theirs(rows: dict[str, dict], name: str) -> tuple[str, dict] | None:
    """The first comparison row of ``name`` that was measured (skipped and failed rows do not count)."""
    for label in AUTHORS.get(name, ()):
        if label in rows and "amortized_s" in rows[label]:
            return label, rows[label]
    return None


def readme_table(result: dict, model: str = "llama-350m") -> str:
    """The README's step-time table for ``model``: per optimizer, ms per step (amortized over the refresh period
    where there is one) on each path of ours, the authors' code, the floor, and the best of ours over theirs."""
    rows = {r["optimizer"]: r for r in result["step"] if r["model"] == model}
    paths = [p for p in PATHS if any(r.get("path") == p for r in rows.values())]
    head = ["optimizer"] + [f"ours, {p}" for p in paths] + ["authors' / third-party code", "floor",
                                                            "best ours / floor", "theirs / best ours"]
    lines = [f"| {model}, ms per step (amortized) | " + " | ".join(head[1:]) + " |", "|" + "---|" * len(head)]
    for name in SETTINGS:
        if name not in rows:
            continue
        ours = [rows.get(name + PATHS[p][1]) for p in paths]
        times = [r["amortized_s"] for r in ours if r and "amortized_s" in r]
        cells = [_fmt_ms(r["amortized_s"]) if r and "amortized_s" in r else "—" for r in ours]
        found = _theirs(rows, name)
        floor = rows[name].get("floor_s")
        best = min(times) if times else math.nan
        cells.append(f"{found[0]} {_fmt_ms(found[1]['amortized_s'])}" if found else "—")
        cells.append(_fmt_ms(floor))
        cells.append(f"{best / floor:.1f}×" if floor and math.isfinite(best) else "—")
        cells.append(f"{found[1]['amortized_s'] / best:.2f}×" if found and math.isfinite(best) else "—")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(result: dict) -> str:
    meta = result["meta"]
    lines = [f"# Optimizer step times ({meta['device']}, torch {meta['torch']})", "",
             f"Copy bandwidth {meta['copy_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s; {meta['gradients']}; refresh gap "
             f"{meta['refresh_gap']}.", "",
             "| model | optimizer | steady step (ms) | refresh step (ms) | amortized (ms) | floor (ms) | steady / floor | "
             "state (MiB) | peak above p+g (MiB) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in result["step"]:
        if "skipped" in r or "error" in r:
            lines.append(f"| {r['model']} | {r['optimizer']} | {r.get('skipped') or r.get('error')} |||||||")
            continue
        peak = r.get("peak_step_bytes_above_params_grads")
        lines.append(f"| {r['model']} | {r['optimizer']} | {_fmt_ms(r['steady_s'])} | {_fmt_ms(r.get('refresh_step_s'))} | "
                     f"{_fmt_ms(r['amortized_s'])} | {_fmt_ms(r.get('floor_s'))} | "
                     f"{r.get('steady_over_floor', float('nan')):.2f} | {r['state_bytes'] / 2**20:.1f} | "
                     f"{(peak or 0) / 2**20:.1f} |")
    speedups = fast_speedups(result["step"])
    if speedups:
        lines += ["", "Fast paths (`fast=True`, `fast=\"compile\"`) against the reference path, same model and gradients:",
                  "", "| model | optimizer | path | reference steady (ms) | path steady (ms) | speed-up | "
                  "reference amortized (ms) | path amortized (ms) | speed-up |", "|---|---|---|---|---|---|---|---|---|"]
        for r in speedups:
            lines.append(f"| {r['model']} | {r['optimizer']} | {r['path']} | {_fmt_ms(r['reference_steady_s'])} | "
                         f"{_fmt_ms(r['fast_steady_s'])} | {r['steady_speedup']:.2f}× | {_fmt_ms(r['reference_amortized_s'])} | "
                         f"{_fmt_ms(r['fast_amortized_s'])} | {r['amortized_speedup']:.2f}× |")
    if result["training"]:
        lines += ["", "| model | optimizer | tokens/s | vs fused AdamW | optimizer share of step |", "|---|---|---|---|---|"]
        for r in result["training"]:
            if "error" in r:
                lines.append(f"| {r['model']} | {r['optimizer']} | {r['error']} |||")
                continue
            lines.append(f"| {r['model']} | {r['optimizer']} | {r['tokens_per_s']:.0f} | "
                         f"{r.get('throughput_vs_fused_adamw', float('nan')):.2f} | {r['optimizer_fraction']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m verify.gpu_bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--models", default="llama-60m,llama-350m")
    ap.add_argument("--steady", type=int, default=20)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--no-training", action="store_true", help="only the step-time table")
    ap.add_argument("--train-model", default="llama-60m", help="the model of the training-throughput rows")
    ap.add_argument("--threads", type=int, default=None, help="intra-op threads (CPU)")
    ap.add_argument("--paths", default="reference,fast",
                    help="our paths to time, of: reference, fast, compile (the elementwise methods only)")
    ap.add_argument("--names", default=None, help="only these optimizers of ours (comma-separated registry names)")
    ap.add_argument("--no-third-party", action="store_true", help="no torch AdamW and no third-party rows")
    ap.add_argument("--merge", nargs="+", metavar="PART", help="merge the JSON files of several runs (no benchmark)")
    ap.add_argument("--readme-table", metavar="MODEL", help="with --merge: print the README table of MODEL too")
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.merge:
        parts = []
        for path in args.merge:
            with open(path) as fh:
                parts.append(json.load(fh))
        result = merge(parts)
    else:
        result = run(args.device, [m for m in args.models.split(",") if m], steady=args.steady,
                     train_steps=args.train_steps, train_model=None if args.no_training else args.train_model,
                     names=args.names.split(",") if args.names else None,
                     paths=[p for p in args.paths.split(",") if p], third_parties=not args.no_third_party)
        result["meta"]["threads"] = torch.get_num_threads()
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)
    text = markdown(result)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    print(text)
    if args.readme_table:
        print(readme_table(result, args.readme_table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
