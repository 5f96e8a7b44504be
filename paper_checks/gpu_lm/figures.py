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
