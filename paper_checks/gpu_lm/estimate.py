r"""How much GPU time a plan needs, from the committed GPU bench (and, as a cross-check, CPU step times).

The bench (``results/bench/gpu_step.json``, ``verify bench --gpu``) measured, on one GPU, every optimizer's
training step of GaLore's 60M shape (vocabulary 32000, batch 32 × 256 tokens, bf16 autocast): the step
time :math:`t` and the optimizer's share :math:`f` of it, and (separately, with fixed gradients) each
optimizer's steady step and its refresh step. The protocol's model has the same blocks and a byte vocabulary,
so per method and step at the plan's batch

.. math::

    t_\text{plan} = t(1 - f)\,\frac{B_\text{plan}}{B_\text{bench}}\,\frac{F_\text{plan}}{F_\text{bench}} + t f
    + \frac{\max(0, t_\text{refresh} - t_\text{steady})}{T},

with :math:`B` the tokens of a step, :math:`F = 6 P_\text{matmul} + 12 L\,s\,h` the training FLOPs of a
token (matrix weights, then attention scores and values), :math:`T` the recipe's refresh gap. The
optimizer's part is not scaled down for the smaller embedding (an overestimate of a few ms a step).
A run adds its evaluations (a forward pass, a third of the model part per token), its gradient-rank traces
(each about one refresh of GaLore: an SVD of every block weight), its checkpoints (the model and an
Adam-sized state written at 1 GB/s) and the HMM sampler (``seq + 1`` sequential steps of ~3 kernel
launches, ~10 µs each, per chunk of batches). Calls add 20 s each (start, imports, CUDA context).

Cross-check (``--measure-cpu STEPS``): each method's step on this CPU (the plan's model, one sequence a
step), as a ratio to Adam's, times Adam's estimated GPU step. CPU ratios weigh the optimizer far more than
a GPU at batch 64 does, so this bounds the spread between methods from above; the bench-based estimate is
the one to plan with.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any, Mapping

from synthetic.llama import LlamaConfig, parameter_count

from .plan import Plan, schedule
from .recipes import GAP_KEYS, RECIPES

__all__ = ["flops_per_token", "method_step_seconds", "estimate_plan", "estimate_text", "measure_cpu_steps",
           "calibration", "expected_seconds"]

BENCH_MODEL = LlamaConfig(vocab=32000)  #: GaLore's 60M shape, as the bench built it
BENCH_SEQ = 256  #: the bench's training sequences (verify.gpu_bench.bench_training: batch 32 x 256)
CALL_OVERHEAD_S = 20.0
CHECKPOINT_BYTES_PER_S = 1e9
LAUNCH_S = 1e-5
CALL_S = 540.0  #: usable seconds of a 10-minute call (scripts/device_protocol.sh keeps a minute in hand)
SESSION_S = 25 * 60.0  #: usable GPU seconds of a 30-minute session (the machine's start takes the rest)


def matmul_parameters(cfg: LlamaConfig) -> int:
    return cfg.layers * (4 * cfg.dim**2 + 3 * cfg.dim * cfg.ffn) + cfg.vocab * cfg.dim


def flops_per_token(cfg: LlamaConfig, seq: int) -> float:
    return 6.0 * matmul_parameters(cfg) + 12.0 * cfg.layers * seq * cfg.dim


def _bench_rows(bench: Mapping[str, Any]) -> tuple[dict, dict]:
    training = {r["optimizer"]: r for r in bench.get("training", []) if "step_s" in r}
    steps = {r["optimizer"]: r for r in bench.get("step", []) if r.get("ours") and r.get("model") == "llama-60m"
             and "steady_s" in r}
    return training, steps


def method_step_seconds(plan: Plan, bench: Mapping[str, Any], method: str) -> dict:
    """The estimated GPU seconds of one training step of ``method`` at the plan's batch (module docstring)."""
    training, steps = _bench_rows(bench)
    if method not in training:
        raise ValueError(f"the GPU bench has no training row for {method!r}; rows: {sorted(training)}")
    row = training[method]
    bench_params = next((r["params"] for r in steps.values() if "params" in r), None)
    if bench_params != parameter_count(BENCH_MODEL):
        raise ValueError(f"the GPU bench's 60M model has {bench_params} parameters, not the {parameter_count(BENCH_MODEL)} "
                         "of GaLore's 60M shape this estimate scales from")
    bench_tokens = round(row["tokens_per_s"] * row["step_s"])
    flops = flops_per_token(plan.model_config, plan.seq) / flops_per_token(BENCH_MODEL, BENCH_SEQ)
    model_s = row["step_s"] * (1 - row["optimizer_fraction"]) * plan.tokens_per_step / bench_tokens * flops
    opt_s = row["step_s"] * row["optimizer_fraction"]
    gap = next((RECIPES[method]["group"][k] for k in GAP_KEYS if k in RECIPES[method]["group"]), None)
    gap = plan.refresh_gap or gap
    step_row = steps.get(method, {})
    refresh = max(0.0, (step_row.get("refresh_step_s") or 0.0) - step_row.get("steady_s", 0.0)) if gap else 0.0
    return {"step_s": model_s + opt_s + (refresh / gap if gap else 0.0), "model_s": model_s, "optimizer_s": opt_s,
            "refresh_s": refresh, "refresh_gap": gap, "first_step_s": step_row.get("first_step_s", 0.0),
            "flops_ratio": flops, "bench_tokens_per_step": bench_tokens}


def run_seconds(plan: Plan, bench: Mapping[str, Any], method: str, steps: int, corpus_kind: str,
                step_s: float | None = None, phase: str = "final") -> float:
    m = method_step_seconds(plan, bench, method)
    per_step = m["step_s"] if step_s is None else step_s
    evals = math.ceil(steps / plan.eval_every)
    eval_s = m["model_s"] / 3 * plan.eval_seqs / plan.batch
    _, rows = _bench_rows(bench)
    trace_s = (rows.get("galore_adamw", {}).get("refresh_step_s") or 1.0) * len(plan.rank_steps(phase, steps))
    params = parameter_count(plan.model_config)
    checkpoints = steps // plan.checkpoint_every
    ckpt_s = checkpoints * 12 * params / CHECKPOINT_BYTES_PER_S
    sampler = math.ceil(steps / plan.data_chunk) * (plan.seq + 1) * 3 * LAUNCH_S if corpus_kind == "hmm" else 0.0
    return steps * per_step + evals * eval_s + trace_s + ckpt_s + sampler + m["first_step_s"]


def spec_seconds(plan: Plan, bench: Mapping[str, Any], spec) -> float:
    """The bench-based estimate of one run (a :class:`paper_checks.gpu_lm.plan.RunSpec` or a saved result)."""
    get = spec.get if isinstance(spec, Mapping) else lambda k: getattr(spec, k)
    return run_seconds(plan, bench, get("method"), get("steps"), plan.corpora[get("corpus")]["kind"], phase=get("phase"))


def calibration(plan: Plan, bench: Mapping[str, Any], results: Mapping[str, dict], device: str | None = None) -> dict:
    """Measured over estimated seconds of the finished GPU runs (``wall_s`` against :func:`spec_seconds`), on
    ``device`` (a name; None: every CUDA device): the factor that corrects the bench-based estimate."""
    ratios = [r["wall_s"] / spec_seconds(plan, bench, r) for r in results.values()
              if r["device"]["type"] == "cuda" and (device is None or r["device"]["name"] == device)
              and r.get("wall_s") and not r.get("diverged")]
    if not ratios:
        return {"runs": 0, "median": None, "max": None}
    return {"runs": len(ratios), "median": statistics.median(ratios), "max": max(ratios)}


#: the factor on the bench-based estimate of a run before any run of the plan was measured on the device
UNMEASURED_FACTOR = 1.5
#: seconds added to the first run of a call (CUDA context, cuBLAS handles, the data stream's set-up)
FIRST_RUN_S = 15.0


def expected_seconds(plan: Plan, bench: Mapping[str, Any], results: Mapping[str, dict], device: str):
    """``f(spec) -> seconds`` for the queue's fit check: the bench-based estimate times the largest measured
    ratio on this device (a margin of 10 %), or :data:`UNMEASURED_FACTOR` before any was measured."""
    cal = calibration(plan, bench, results, device)
    factor = 1.1 * cal["max"] if cal["max"] else UNMEASURED_FACTOR
    started = []

    def expected(spec) -> float:
        first = 0.0 if started else FIRST_RUN_S
        started.append(spec)
        return factor * spec_seconds(plan, bench, spec) + first

    return expected


def estimate_plan(plan: Plan, bench: Mapping[str, Any], results: Mapping[str, dict] | None = None,
                  cpu_steps: Mapping[str, float] | None = None, piece: str | None = None) -> dict:
    """GPU seconds of every run of the plan (or of one piece), of those not finished yet, and the calls and
    sessions they take. Final runs whose rate is not selected yet are counted once per seed (their cost does not
    depend on it)."""
    from .plan import RunSpec

    results = results or {}
    chosen = plan.piece(piece)
    sched = schedule(plan, results)
    per_method = {m: method_step_seconds(plan, bench, m) for m in plan.methods}
    cpu_gpu = None
    if cpu_steps:
        adam = per_method[plan.baseline]["step_s"]
        cpu_gpu = {m: adam * cpu_steps[m] / cpu_steps[plan.baseline] for m in plan.methods}
    total = remaining = total_cpu = 0.0
    runs = tokens = 0
    for corpus, spec in plan.corpora.items():
        for method in plan.methods:
            phases = [("sweep", m, plan.sweep.seed) for m in plan.sweep.multipliers] + [("final", None, s) for s in plan.seeds]
            for phase, scale, seed in phases:
                steps = plan.run_steps(phase)
                if not chosen.holds(RunSpec(corpus, method, phase, scale or 1.0, seed, steps)):
                    continue
                seconds = run_seconds(plan, bench, method, steps, spec["kind"], phase=phase)
                runs += 1
                tokens += steps * plan.tokens_per_step
                total += seconds
                if cpu_gpu:
                    total_cpu += run_seconds(plan, bench, method, steps, spec["kind"], step_s=cpu_gpu[method],
                                             phase=phase)
                done = any((s.corpus, s.method, s.phase, s.seed) == (corpus, method, phase, seed)
                           and (scale is None or s.lr_scale == scale) for s in sched.done.values())
                remaining += 0.0 if done else seconds
    calls = math.ceil(remaining / CALL_S) if remaining else 0
    out = {
        "plan": plan.name, "piece": chosen.name, "runs": runs, "tokens_per_run": plan.steps * plan.tokens_per_step,
        "tokens_total": tokens,
        "bench": {k: bench.get("meta", {}).get(k) for k in ("device", "torch", "run")},
        "per_method": per_method, "gpu_seconds": total, "remaining_gpu_seconds": remaining,
        "remaining_with_call_overhead_s": remaining + calls * CALL_OVERHEAD_S,
        "calls_of_10_min": calls, "sessions_of_30_min": math.ceil((remaining + calls * CALL_OVERHEAD_S) / SESSION_S),
        "finished_runs": len(sched.done),
        "calibration": calibration(plan, bench, results),
    }
    if out["calibration"]["median"]:
        factor = out["calibration"]["median"]
        out["calibrated"] = {"factor": factor, "gpu_seconds": total * factor, "remaining_gpu_seconds": remaining * factor,
                             "calls_of_10_min": math.ceil(remaining * factor / CALL_S) if remaining else 0}
    if cpu_gpu:
        out["cpu_cross_check"] = {"cpu_step_s": dict(cpu_steps), "gpu_step_s_from_cpu_ratios": cpu_gpu,
                                  "gpu_seconds": total_cpu}
    return out


def estimate_text(est: Mapping[str, Any]) -> str:
    lines = [f"plan {est['plan']}{'' if est['piece'] == 'all' else ' piece ' + est['piece']}: {est['runs']} runs, {est['tokens_total'] / 1e9:.2f}B tokens "
             f"({est['tokens_per_run'] / 1e6:.1f}M a final run); GPU bench: {est['bench']['device']}",
             f"{'method':<14} {'step ms':>8} {'model':>7} {'optim':>7} {'refresh s / gap':>16}"]
    for m, r in est["per_method"].items():
        gap = f"{r['refresh_s']:.2f} / {r['refresh_gap']}" if r["refresh_gap"] else "-"
        lines.append(f"{m:<14} {1e3 * r['step_s']:>8.1f} {1e3 * r['model_s']:>7.1f} {1e3 * r['optimizer_s']:>7.1f} {gap:>16}")
    lines.append(f"{'whole plan' if est['piece'] == 'all' else 'piece'}: {est['gpu_seconds'] / 3600:.2f} GPU-hours on one GPU; not finished yet: "
                 f"{est['remaining_gpu_seconds'] / 3600:.2f} h = {est['calls_of_10_min']} calls of 10 min, "
                 f"~{est['sessions_of_30_min']} sessions of 30 min (divide by the GPUs of a multi-GPU machine)")
    if est.get("calibrated"):
        c = est["calibrated"]
        lines.append(f"calibrated on {est['calibration']['runs']} finished GPU runs (measured / estimated = "
                     f"{c['factor']:.2f}): whole plan {c['gpu_seconds'] / 3600:.2f} GPU-hours, not finished yet "
                     f"{c['remaining_gpu_seconds'] / 3600:.2f} h = {c['calls_of_10_min']} calls of 10 min")
    if "cpu_cross_check" in est:
        lines.append(f"cross-check from CPU step ratios: {est['cpu_cross_check']['gpu_seconds'] / 3600:.2f} GPU-hours")
    return "\n".join(lines)


def measure_cpu_steps(plan: Plan, steps: int, seq: int | None = None) -> dict[str, float]:
    """Median CPU seconds of a training step of each method (the plan's model, one sequence of ``seq`` tokens
    a step, after one untimed step that builds the subspaces)."""
    import torch

    from synthetic.llama import Llama

    from .recipes import build_optimizer

    seq = seq or plan.seq
    out = {}
    for method in plan.methods:
        torch.manual_seed(0)
        model = Llama(plan.model_config)
        opt, _ = build_optimizer(method, model, rank=plan.rank, refresh_gap=plan.refresh_gap)
        tokens = torch.randint(0, plan.model_config.vocab, (1, seq + 1), generator=torch.Generator().manual_seed(0))
        times = []
        for i in range(steps + 1):
            t0 = time.perf_counter()
            model.loss(tokens).backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if i:
                times.append(time.perf_counter() - t0)
        out[method] = statistics.median(times)
    return out
