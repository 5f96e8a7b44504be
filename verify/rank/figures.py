"""The rank figures (``verify figures --only rank``, ``verify rank --figures``), drawn from results/rank/*.json only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from verify.figures import figure

from .theory import EPS_LEVELS

__all__ = ["make_figures"]


def _load(results_dir: Path, key: str) -> dict[str, Any] | None:
    path = results_dir / f"{key}.json"
    return json.loads(path.read_text()) if path.exists() else None


@figure("rank", results="results/rank", description="stable rank and r(ε) against step, with the predictions")
def make_figures(results_dir: str | Path, out_dir: str | Path | None) -> list[Path]:
    """Stable rank and r(ε) against step, with the predictions, from the saved results (never reruns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results_dir = Path(results_dir)
    out_dir = results_dir / "figures" if out_dir is None else Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    lemma = _load(results_dir, "lemma33")
    if lemma and "trace" in lemma:
        tr = lemma["trace"]
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        a.semilogy(tr["step"], [max(s - lemma["theory"]["sr_limit"], 1e-16) for s in tr["stable_rank"]], label="measured sr − sr∞")
        a.semilogy(tr["step"], [max(s - lemma["theory"]["sr_limit"], 1e-16) for s in tr["closed_form"]], "--", label="closed form")
        a.semilogy(tr["step"], [b_ - lemma["theory"]["sr_limit"] for b_ in tr["bound"]], ":", label="Lemma 3.3 bound")
        if "roundoff" in tr:
            a.semilogy(tr["step"], tr["roundoff"], color="0.6", lw=0.8, label="round-off tolerance")
        a.set_xlabel("step t")
        a.set_ylabel("sr(G_t) − sr∞")
        a.set_title(f"GaLore Lemma 3.3, ρ² = {lemma['theory']['rho_squared']:.4f}")
        a.legend()
        for e in EPS_LEVELS:
            b.step(tr["step"], tr[f"energy_rank_{e:g}"], where="post", label=f"r({e:g})")
        b.set_xlabel("step t")
        b.set_ylabel("energy rank")
        b.set_xscale("symlog")
        b.set_xlim(left=0)
        b.legend()
        fig.tight_layout()
        path = out_dir / "rank_lemma33.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    limit = _load(results_dir, "rank_one_limit")
    if limit and "cases" in limit:
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, case in limit["cases"].items():
            line, = ax.plot(case["trace"]["step"], [max(s - 1, 1e-16) for s in case["trace"]["stable_rank"]],
                            label=f"{label} measured")
            excess = case["predicted_limit_sr_unvec_v1"] - 1
            if excess > 1e-12:
                ax.axhline(excess, color=line.get_color(), ls=":", label=f"{label} limit sr(unvec v₁) − 1 = {excess:.4f}")
            else:
                line.set_label(f"{label} measured (limit sr(unvec v₁) = 1)")
        ax.set_xscale("symlog")
        ax.set_xlim(left=0)
        ax.set_yscale("log")
        ax.set_xlabel("step t (until the float floor)")
        ax.set_ylabel("stable rank − 1")
        ax.set_title("Rank → 1 only when v₁ is decomposable")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "rank_limit.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    noise = _load(results_dir, "noise_effect")
    if noise and "trace_observed" in noise:
        fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
        a.plot(noise["trace_observed"]["step"], noise["trace_observed"]["stable_rank"], label="observed G + ξ")
        a.plot(noise["trace_clean"]["step"], noise["trace_clean"]["stable_rank"], label="clean E[G]")
        a.axhline(noise["noise_level"], color="k", ls=":", label=f"noise level {noise['noise_level']:.2f}")
        a.set_xscale("symlog")
        a.set_xlim(left=0)
        a.set_xlabel("step t")
        a.set_ylabel("stable rank")
        a.set_title(f"noise σ = {noise['problem']['sigma']:g}")
        a.legend()
        for e in EPS_LEVELS:
            b.step(noise["trace_observed"]["step"], noise["trace_observed"][f"energy_rank_{e:g}"], where="post",
                   label=f"observed r({e:g})")
            b.step(noise["trace_clean"]["step"], noise["trace_clean"][f"energy_rank_{e:g}"], where="post", ls="--",
                   label=f"clean r({e:g})")
        b.set_xscale("symlog")
        b.set_xlim(left=0)
        b.set_xlabel("step t")
        b.set_ylabel("energy rank")
        b.legend(fontsize=7)
        fig.tight_layout()
        path = out_dir / "rank_noise.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    arg = _load(results_dir, "adarankgrad_trace")
    if arg and "runs" in arg:
        fig, ax = plt.subplots(figsize=(6, 4))
        for label, run in arg["runs"].items():
            ax.step(range(1, len(run["rank_trace"]) + 1), run["rank_trace"], where="post", label=f"{label} r_t")
        ax.set_xlabel("step t")
        ax.set_ylabel("chosen rank r_t")
        ax.set_title(f"AdaRankGrad rank trace (τ = {arg['settings']['rank_threshold']})")
        ax.legend()
        fig.tight_layout()
        path = out_dir / "rank_adarankgrad.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written
