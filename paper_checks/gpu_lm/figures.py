"""Figures of the GPU transformer runs, drawn from ``results/gpu_lm/runs/*.json`` only (``verify figures --only gpu_lm``)."""

from __future__ import annotations

import os
from pathlib import Path

from verify.figures import figure

from .claims import load_runs


@figure("gpu_lm", results="results/gpu_lm", description="GPU runs: optimality gap and gradient stable rank against step")
def make_figures(results_dir: Path, out_dir: Path | None) -> list[Path]:
    """Evaluation gap ``loss − H*`` against step (mean over seeds, band = seed range), and the median
    stable rank of the block linear weights' gradients against step."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    runs = load_runs(os.path.join(str(results_dir), "runs", "*.json"))
    if not runs:
        return []
    out_dir = Path(results_dir) / "figures" if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig, (ax_gap, ax_rank) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in sorted(runs):
        steps = [c["step"] for c in runs[name][0]["curve"]]
        gaps = [[r["curve"][i]["gap"] for r in runs[name] if len(r["curve"]) > i] for i in range(len(steps))]
        mean = [sum(g) / len(g) for g in gaps]
        (line,) = ax_gap.plot(steps, mean, marker="o", label=f"{name} ({len(runs[name])} seeds)")
        ax_gap.fill_between(steps, [min(g) for g in gaps], [max(g) for g in gaps], color=line.get_color(), alpha=0.2)
        trace = [(g["step"], g["median_stable_rank"]) for g in runs[name][0].get("grad_rank", []) if g["median_stable_rank"] is not None]
        if trace:
            ax_rank.plot(*zip(*trace), marker="o", color=line.get_color(), label=name)
    ax_gap.set(xlabel="step", ylabel="eval loss − H* (nats/byte)", yscale="log", title="LLaMA-60M shape, HMM bytes, 1 H200")
    ax_rank.set(xlabel="step", ylabel="median stable rank of block-weight gradients", title="gradient rank (seed 0)")
    ax_gap.legend(fontsize=7)
    ax_rank.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / "gpu_lm_gap_and_rank.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return [path]


@figure("gpu_lm_protocol", results="results/gpu_lm/protocol",
        description="GPU protocol: loss against tokens at the selected rates, the learning-rate sweeps, gradient ranks")
def protocol_figures(results_dir: Path, out_dir: Path | None) -> list[Path]:
    """One figure per plan folder with runs and per corpus (``<plan>/figures/protocol_<corpus>.png``): the
    evaluation loss (the optimality gap on the HMM language) against tokens for every method whose final seeds
    are complete (mean over seeds, band = seed range), each method's sweep (its metric against the learning-rate
    multiplier, the selected one starred), and the gradient-rank traces."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from .analysis import final_runs, rank_trace
    from .plan import load_plan, load_results, progress, progress_text, run_metric, schedule

    paths = []
    for plan_dir in sorted(p for p in Path(results_dir).iterdir() if (p / "runs").is_dir()):
        plan = load_plan(plan_dir.name)
        results = load_results(plan, plan_dir)
        if not results:
            continue
        sched = schedule(plan, results)
        target = (plan_dir / "figures") if out_dir is None else Path(out_dir) / plan.name
        target.mkdir(parents=True, exist_ok=True)
        for corpus, spec in plan.corpora.items():
            fig, (ax_loss, ax_sweep, ax_rank) = plt.subplots(1, 3, figsize=(16, 4.4))
            drawn = False
            for i, method in enumerate(plan.methods):
                color = f"C{i}"
                points = sorted((s.lr_scale, run_metric(results[k], spec["metric"])) for k, s in sched.done.items()
                                if (s.corpus, s.method, s.phase) == (corpus, method, "sweep"))
                finite = [(m, v) for m, v in points if v is not None]
                if finite:
                    ax_sweep.plot(*zip(*finite), marker="o", color=color, label=method)
                    drawn = True
                sel = sched.selections.get(corpus, {}).get(method)
                if sel is not None and sel.lr_scale is not None:
                    ax_sweep.plot([sel.lr_scale], [dict(finite)[sel.lr_scale]], marker="*", markersize=14, color=color)
                runs, why = final_runs(plan, results, corpus, method)
                runs = [r for r in runs if not r["diverged"]]
                if why or not runs:
                    continue
                shift = runs[0]["h_star"] or 0.0
                tokens = [c["tokens"] for c in runs[0]["curve"]]
                ys = [[r["curve"][j]["eval_loss"] - shift for r in runs if len(r["curve"]) > j] for j in range(len(tokens))]
                (line,) = ax_loss.plot(tokens, [sum(y) / len(y) for y in ys], color=color,
                                       label=f"{method} x{runs[0]['lr_scale']:g} ({len(runs)} seeds)")
                ax_loss.fill_between(tokens, [min(y) for y in ys], [max(y) for y in ys], color=color, alpha=0.2)
                trace = rank_trace(runs)
                if trace:
                    ax_rank.plot([t["step"] for t in trace], [t["median_stable_rank"] for t in trace], marker="o",
                                 color=color, label=method)
            if not drawn:
                plt.close(fig)
                continue
            gap = spec["kind"] == "hmm"
            ax_loss.set(xlabel="tokens", ylabel="eval loss − H* (nats/byte)" if gap else "eval loss (nats/byte)",
                        yscale="log" if gap else "linear", title=f"{corpus}: final seeds at the selected rates")
            ax_sweep.set(xscale="log", xlabel="learning rate / paper's", ylabel=f"{spec['metric']} eval loss",
                         title=f"sweep ({plan.sweep.steps} steps, seed {plan.sweep.seed}; ★ selected)")
            ax_rank.set(xlabel="step", ylabel="median stable rank of block-weight gradients", title="gradient rank")
            for ax in (ax_loss, ax_sweep, ax_rank):
                if ax.lines:
                    ax.legend(fontsize=7)
            devices = ", ".join(sorted({r["device"]["name"] for r in results.values()}))
            fig.suptitle(f"plan {plan.name} ({plan.description}); {devices}\n{progress_text(progress(plan, results))}",
                         fontsize=9)
            fig.tight_layout()
            path = target / f"protocol_{corpus}.png"
            fig.savefig(path, dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths
