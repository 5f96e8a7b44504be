"""Claims checked on the GPU transformer runs, read from the committed result files.

The runs (``results/gpu_lm/runs/*.json``, made by :mod:`paper_checks.gpu_lm.train` on one H200) train
the LLaMA-60M-shaped byte model on the HMM language for 300 steps per optimizer and seed, with each
paper's routing and settings and no tuning. The papers' claims concern other data (C4, OpenWebText),
other sizes and 30–300× longer budgets, so a paper claim measured here is reported (MEASURED), never
PASSed: the numbers say what this budget shows, not whether the paper is right. Two things are
asserted, because they are this toolkit's own claims and the runs measure them directly: that every
reference optimizer trains without divergence on the GPU, and that the optimizer state on the GPU
equals the memory formula exactly (``results/memory/gpu_memory.json``).

Nothing here runs a GPU: the checks only read files. Regenerate the files with the commands in
README ("GPU validation").
"""

from __future__ import annotations

import glob
import json
import math
import os
import statistics

from verify.claims import claim
from verify.verdicts import Outcome

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "results")
RUNS = os.path.join(ROOT, "gpu_lm", "runs")
GPU_MEMORY = os.path.join(ROOT, "memory", "gpu_memory.json")


def load_runs(pattern: str = os.path.join(RUNS, "*.json")) -> dict[str, list[dict]]:
    """``{optimizer: [run, ...]}`` over every result file (each run annotated with its seed and H*)."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(glob.glob(pattern)):
        with open(path) as fh:
            data = json.load(fh)
        for r in data["results"]:
            runs.setdefault(r["optimizer"], []).append({**r, "seed": data["meta"]["args"]["seed"], "h_star": data["meta"]["h_star"]})
    return runs


def final_gaps(runs: dict[str, list[dict]], name: str) -> list[float]:
    return [r["final_gap"] for r in runs.get(name, []) if r["final_gap"] is not None and not r["diverged"]]


def gap_summary(runs: dict[str, list[dict]], name: str) -> dict:
    gaps = final_gaps(runs, name)
    if not gaps:
        return {"n": 0}
    return {"n": len(gaps), "mean": statistics.fmean(gaps), "min": min(gaps), "max": max(gaps)}


def compare(runs: dict[str, list[dict]], method: str, baseline: str) -> Outcome:
    """Report (MEASURED) the final optimality gap of ``method`` against ``baseline`` (mean over seeds, with the
    seed range); the difference is called "within seed spread" when the two ranges overlap."""
    a, b = gap_summary(runs, method), gap_summary(runs, baseline)
    if not a["n"] or not b["n"]:
        return Outcome("INCONCLUSIVE", f"no finished runs of {method if not a['n'] else baseline} in {RUNS}")
    overlap = a["min"] <= b["max"] and b["min"] <= a["max"]
    verdict = "within the seed spread" if overlap else ("lower" if a["mean"] < b["mean"] else "higher")
    detail = (
        f"after 300 steps: {method} gap {a['mean']:.4f} [{a['min']:.4f}, {a['max']:.4f}] vs {baseline} "
        f"{b['mean']:.4f} [{b['min']:.4f}, {b['max']:.4f}] nats/byte over {a['n']}/{b['n']} seeds: {method} is {verdict}"
    )
    superseded = sorted({r["routing_superseded"] for name in (method, baseline) for r in runs.get(name, [])
                         if r.get("routing_superseded")})
    if superseded:
        detail += f"; these runs used a routing that is no longer the paper's: {'; '.join(superseded)}"
    return Outcome("MEASURED", detail, {"method": a, "baseline": b, "difference": a["mean"] - b["mean"]})


@claim("gpu.trains-without-divergence", paper="optverify", where="paper_checks/gpu_lm", provenance="M", kind="gpu",
       statement="Every reference optimizer, with its paper's routing, trains the LLaMA-60M-shaped model on the GPU "
       "(bf16 autocast) without divergence and lowers the evaluation gap between the first and last evaluation.")
def _trains(quick: bool) -> Outcome:
    runs = load_runs()
    if not runs:
        return Outcome("INCONCLUSIVE", f"no result files in {RUNS}")
    bad = []
    for name, rs in runs.items():
        for r in rs:
            curve = r["curve"]
            if r["diverged"] or len(curve) < 2 or not all(math.isfinite(c["eval_loss"]) for c in curve) or curve[-1]["gap"] >= curve[0]["gap"]:
                bad.append(f"{name} (seed {r['seed']})")
    n = sum(len(v) for v in runs.values())
    if bad:
        return Outcome("FAIL", f"{len(bad)} of {n} runs diverged or did not improve: {', '.join(bad)}")
    return Outcome("PASS", f"{n} runs of {len(runs)} optimizers: all finite, all improved", {"optimizers": sorted(runs)})


@claim("gpu.state-equals-formula", paper="optverify", where="verify/memory/gpu.py", provenance="M", kind="gpu",
       statement="On the GPU, every optimizer's state (elements, bytes, dtype, device) equals its memory formula exactly.")
def _gpu_state(quick: bool) -> Outcome:
    if not os.path.exists(GPU_MEMORY):
        return Outcome("INCONCLUSIVE", f"{GPU_MEMORY} missing")
    with open(GPU_MEMORY) as fh:
        data = json.load(fh)
    rows = data["results"]
    inexact = [r["algorithm"] for r in rows if not r["state_exact"]]
    if data.get("errors"):
        return Outcome("FAIL", f"algorithms that failed on the GPU: {sorted(data['errors'])}")
    if inexact:
        return Outcome("FAIL", f"state differs from the formula: {inexact}")
    return Outcome("PASS", f"{len(rows)} algorithms on {data['meta']['device']}: state == formula exactly")


@claim("galore.table2-60m", paper="GaLore, arXiv 2403.03507", where="Table 2 (60M)", provenance="P", kind="gpu",
       statement="GaLore (rank 128, alpha 0.25, T 200) is close to full-rank Adam (34.88 vs 34.06 perplexity on C4).")
def _galore(quick: bool) -> Outcome:
    return compare(load_runs(), "galore_adamw", "adam")


@claim("fira.table3-60m", paper="Fira, arXiv 2410.01623", where="Table 3 (60M)", provenance="P", kind="gpu",
       statement="Fira beats GaLore at the same rank (31.06 vs 34.88 perplexity on C4 at 60M).")
def _fira(quick: bool) -> Outcome:
    return compare(load_runs(), "fira_adamw", "galore_adamw")


@claim("ldadam.matches-adam", paper="LDAdam, arXiv 2410.16103", where="abstract", provenance="A", kind="gpu",
       statement="LDAdam aims to replicate Adam's performance with a fraction of its memory.")
def _ldadam(quick: bool) -> Outcome:
    return compare(load_runs(), "ldadam", "adam")


@claim("adarankgrad.vs-galore", paper="AdaRankGrad, arXiv 2410.17881", where="Lotus' report of the C4 table", provenance="S", kind="gpu",
       statement="AdaRankGrad is about as good as GaLore on LLaMA pretraining (34.24 vs 34.88 at 60M, as reported by Lotus).")
def _adarankgrad(quick: bool) -> Outcome:
    return compare(load_runs(), "adarankgrad", "galore_adamw")


@claim("snsm.adam-in-half-the-tokens", paper="SN-SM, arXiv 2411.07120", where="abstract; LLaMA-1B figure", provenance="F", kind="gpu",
       statement="AdamSNSM reaches Adam's perplexity in about half the tokens (LLaMA-1B, 6.8B vs 13.1B).")
def _snsm(quick: bool) -> Outcome:
    return compare(load_runs(), "adam_sn_sm", "adam")


@claim("snsm.adamsn-matches-adam", paper="SN-SM, arXiv 2411.07120", where="LLaMA-1B figure", provenance="F", kind="gpu",
       statement="AdamSN with heuristic subsets trains as well as Adam (it reaches Adam's 16.00 perplexity at ~58k of 100k steps).")
def _adamsn(quick: bool) -> Outcome:
    return compare(load_runs(), "adam_sn", "adam")


@claim("mars.beats-adamw", paper="MARS, arXiv 2411.10438", where="Tables 9-10, Figs. 1-3", provenance="P", kind="gpu",
       statement="MARS-AdamW (approximate, gamma 0.025) reaches a lower loss than AdamW at equal tokens (GPT-2).")
def _mars(quick: bool) -> Outcome:
    return compare(load_runs(), "mars_adamw", "adam")


# ---- the validation protocol (paper_checks/gpu_lm/plan.py, plans/gpu.json; docs/gpu_protocol.md) ----
#: the plan whose results the protocol claims read, and its results folder (None: results/gpu_lm/protocol/<plan>)
PROTOCOL_PLAN = "gpu"
PROTOCOL_RESULTS: str | None = None
PROTOCOL_CORPORA = {"hmm": "the HMM byte language", "repo_text": "this repository's text at a pinned commit"}
PROTOCOL_WHY_REPORTED = ("the protocol's data (a synthetic byte language, this repository's text) and scale (LLaMA-60M "
                         "shape with bytes as tokens, 50M tokens a run) differ from the paper's, so its evidence is "
                         "reported, not asserted")
#: where each paper makes the claim the protocol tests (the tests themselves: paper_checks.gpu_lm.analysis.CLAIMS)
PROTOCOL_SOURCES = {
    "snsm.protocol-fewer-tokens": ("SN-SM, arXiv 2411.07120", "abstract; LLaMA-1B figure", "F"),
    "mars.protocol-beats-adamw": ("MARS, arXiv 2411.10438", "Tables 9-10, Figs. 1-3", "P"),
    "ldadam.protocol-matches-adam": ("LDAdam, arXiv 2410.16103", "abstract", "A"),
    "fira.protocol-beats-galore": ("Fira, arXiv 2410.01623", "Table 3 (60M)", "P"),
    "adarankgrad.protocol-vs-galore": ("AdaRankGrad, arXiv 2410.17881", "Lotus' report of the C4 table", "S"),
}


def _register_protocol_claims() -> None:
    """One claim per analysis claim and corpus: Welch's t (or TOST) over the final seeds at the selected rates
    (:func:`paper_checks.gpu_lm.analysis.compare`), reported, never asserted."""
    from verify.claims import Claim, register

    from .analysis import CLAIMS

    for key, method, baseline, hypothesis, statement in CLAIMS:
        paper, where, provenance = PROTOCOL_SOURCES[key]
        for corpus, label in PROTOCOL_CORPORA.items():
            def check(quick: bool, corpus=corpus, method=method, baseline=baseline, hypothesis=hypothesis) -> Outcome:
                from .analysis import protocol_comparison

                got = protocol_comparison(PROTOCOL_PLAN, PROTOCOL_RESULTS, corpus, method, baseline, hypothesis)
                return Outcome(got["outcome"], got["reason"], got["numbers"], assess=False,
                               not_assessed_because=PROTOCOL_WHY_REPORTED)

            register(Claim(f"{key}.{corpus}", paper, where, provenance, f"{statement} [protocol, {label}]", "gpu", check))


_register_protocol_claims()
