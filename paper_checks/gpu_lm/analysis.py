"""What the protocol's saved runs say: per-method summaries against the baseline, and the significance verdicts.

Per corpus and method (the final runs at the selected learning rate, one value per seed):

* the corpus metric (:func:`paper_checks.gpu_lm.plan.run_metric`; for the HMM language also the optimality
  gap ``loss − H*``) with its mean, standard deviation and range over seeds;
* **steps to the baseline's loss**: the first step at which the run's evaluation curve (its running minimum
  for the ``best`` metric) reaches the baseline's mean metric, interpolated linearly between evaluations;
  None when it never does within the budget;
* the optimizer-state memory ratio, the step-time ratio (mean step, refreshes included) and tokens/s, each
  against the baseline, only between runs measured on the same device;
* the gradient-rank traces (median stable rank of the block weights' gradients, mean over seeds).

**Verdicts** (:func:`compare`; the rule is :mod:`verify.significance`, ``alpha`` from the plan). A claim of
the form "the method reaches a lower loss" (or "reaches the baseline's loss in fewer tokens", which at a
fixed budget is the same event for decreasing curves; the token ratio is reported with it) is tested by
Welch's t-test on the per-seed metric: PASS when significantly lower, FAIL when significantly higher,
INCONCLUSIVE otherwise. A claim "about as good as" is tested for equivalence within
``equivalence_margin`` × the baseline's mean (TOST): PASS equivalent, FAIL not equivalent, INCONCLUSIVE
undecided. Missing, unfinished, stale or diverged runs give INCONCLUSIVE with the reason, never a verdict.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Mapping

from verify.significance import equivalence, welch

from .plan import Plan, StaleResult, load_plan, load_results, run_metric, schedule

__all__ = ["HYPOTHESES", "steps_to_reach", "corpus_summary", "summarize", "compare"]

HYPOTHESES = ("lower", "equivalent")
ROOT = Path(__file__).resolve().parents[2]
UNIT = "nats/byte"


def steps_to_reach(curve: list[Mapping[str, Any]], target: float, metric: str) -> float | None:
    """The first (interpolated) step where the curve reaches ``target`` (module docstring)."""
    prev_step, prev_value, best = 0, None, math.inf
    for point in curve:
        value = point["eval_loss"]
        if metric == "best":
            best = min(best, value)
            value = best
        if value <= target:
            if prev_value is None or prev_value == value:
                return float(point["step"])
            return prev_step + (prev_value - target) / (prev_value - value) * (point["step"] - prev_step)
        prev_step, prev_value = point["step"], value
    return None


def _stats(values: list[float]) -> dict:
    return {"n": len(values), "mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "values": values}


def final_runs(plan: Plan, results: Mapping[str, dict], corpus: str, method: str) -> tuple[list[dict], str | None]:
    """The final runs of ``method`` on ``corpus`` at its selected rate, or ``([], why not)``."""
    sched = schedule(plan, results)
    sel = sched.selections.get(corpus, {}).get(method)
    if sel is None:
        done = sum(1 for k, spec in sched.done.items() if (spec.corpus, spec.method, spec.phase) == (corpus, method, "sweep"))
        return [], f"the learning-rate sweep of {method} on {corpus} is unfinished ({done}/{len(plan.sweep.multipliers)} points)"
    if sel.lr_scale is None:
        return [], f"every sweep point of {method} on {corpus} diverged: no rate selected"
    runs = [results[k] for k, spec in sched.done.items()
            if (spec.corpus, spec.method, spec.phase, spec.lr_scale) == (corpus, method, "final", sel.lr_scale)]
    if len(runs) < len(plan.seeds):
        return [], (f"{len(runs)} of {len(plan.seeds)} final seeds of {method} on {corpus} (x{sel.lr_scale:g}) finished")
    return sorted(runs, key=lambda r: r["seed"]), None


def _same_device(a: list[dict], b: list[dict]) -> bool:
    names = {r["device"]["name"] for r in a + b}
    return len(names) == 1


def method_summary(plan: Plan, results: Mapping[str, dict], corpus: str, method: str) -> dict:
    runs, why = final_runs(plan, results, corpus, method)
    if why:
        return {"complete": False, "reason": why}
    metric = plan.corpora[corpus]["metric"]
    values = [run_metric(r, metric) for r in runs]
    out: dict[str, Any] = {"complete": True, "lr_scale": runs[0]["lr_scale"], "lr": runs[0]["lr"],
                           "seeds": [r["seed"] for r in runs], "diverged": [r["seed"] for r, v in zip(runs, values) if v is None],
                           "devices": sorted({r["device"]["name"] for r in runs}),
                           "state_bytes": runs[0]["optimizer_state_bytes"],
                           "mean_step_s": statistics.fmean(r["mean_step_s"] for r in runs),
                           "tokens_per_s": statistics.fmean(r["tokens_per_s"] for r in runs)}
    finite = [v for v in values if v is not None]
    out["metric"] = _stats(finite) if finite else None
    if runs[0].get("h_star") is not None and finite:
        out["gap"] = _stats([v - runs[0]["h_star"] for v in finite])
    out["grad_rank"] = rank_trace(runs)
    return out


def rank_trace(runs: list[dict]) -> list[dict]:
    """The median stable rank of the block weights' gradients at each traced step, mean over the runs."""
    by_step: dict[int, list[float]] = {}
    for r in runs:
        for g in r.get("grad_rank", []):
            if g.get("median_stable_rank") is not None:
                by_step.setdefault(g["step"], []).append(g["median_stable_rank"])
    return [{"step": s, "median_stable_rank": statistics.fmean(v), "runs": len(v)} for s, v in sorted(by_step.items())]


def corpus_summary(plan: Plan, results: Mapping[str, dict], corpus: str) -> dict:
    """Every method's summary on one corpus, with the ratios to the baseline where both are complete."""
    metric = plan.corpora[corpus]["metric"]
    summaries = {m: method_summary(plan, results, corpus, m) for m in plan.methods}
    base = summaries[plan.baseline]
    if base["complete"] and base["metric"] and not base["diverged"]:
        target = base["metric"]["mean"]
        base_runs, _ = final_runs(plan, results, corpus, plan.baseline)
        for m, s in summaries.items():
            if not s["complete"]:
                continue
            runs, _ = final_runs(plan, results, corpus, m)
            reach = [steps_to_reach(r["curve"], target, metric) for r in runs]
            reached = [x for x in reach if x is not None]
            s["steps_to_baseline"] = {"target": target, "per_seed": reach, "reached": len(reached),
                                      "mean": statistics.fmean(reached) if reached else None,
                                      "fraction_of_budget": statistics.fmean(reached) / plan.steps if reached else None}
            s["state_ratio"] = s["state_bytes"] / base["state_bytes"] if base["state_bytes"] else None
            comparable = _same_device(runs, base_runs)
            s["step_time_ratio"] = s["mean_step_s"] / base["mean_step_s"] if comparable else None
            s["tokens_per_s_ratio"] = s["tokens_per_s"] / base["tokens_per_s"] if comparable else None
    return {"metric": metric, "baseline": plan.baseline, "methods": summaries}


def summarize(plan: Plan, results: Mapping[str, dict]) -> dict:
    devices = sorted({r["device"]["name"] for r in results.values()})
    return {"plan": plan.name, "devices": devices, "runs": len(results),
            "corpora": {c: corpus_summary(plan, results, c) for c in plan.corpora}}


def compare(plan: Plan, results: Mapping[str, dict], corpus: str, method: str, baseline: str,
            hypothesis: str) -> dict:
    """``{"outcome", "reason", "numbers"}`` for the hypothesis that ``method`` is lower than (``"lower"``) or
    equivalent to (``"equivalent"``) ``baseline`` on ``corpus`` (module docstring)."""
    if hypothesis not in HYPOTHESES:
        raise ValueError(f"hypothesis must be one of {HYPOTHESES}, got {hypothesis!r}")
    metric = plan.corpora[corpus]["metric"]
    runs, why = {}, []
    for name in (method, baseline):
        runs[name], reason = final_runs(plan, results, corpus, name)
        if reason:
            why.append(reason)
    if why:
        return {"outcome": "INCONCLUSIVE", "reason": "; ".join(why), "numbers": {}}
    values = {name: [run_metric(r, metric) for r in rs] for name, rs in runs.items()}
    diverged = {name: sum(v is None for v in vs) for name, vs in values.items() if any(v is None for v in vs)}
    if diverged:
        return {"outcome": "INCONCLUSIVE", "numbers": {},
                "reason": "; ".join(f"{n} diverged in {k} of {len(values[n])} final seeds" for n, k in diverged.items())
                + ": the significance rule needs a finite loss on every seed"}
    a, b = values[method], values[baseline]
    what = f"{corpus} ({'final' if metric == 'final' else 'best'} evaluation loss, {len(a)}/{len(b)} seeds, " \
           f"rates x{runs[method][0]['lr_scale']:g}/x{runs[baseline][0]['lr_scale']:g})"
    d = welch(a, b, plan.alpha)
    numbers = {"corpus": corpus, "metric": metric, "method_mean": d.mean_a, "method_std": d.std_a,
               "baseline_mean": d.mean_b, "baseline_std": d.std_b, "difference": d.difference, "t": d.t, "df": d.df,
               "p": d.p, "alpha": plan.alpha}
    means = f"{method} {d.mean_a:.4f} ± {d.std_a:.4f} vs {baseline} {d.mean_b:.4f} ± {d.std_b:.4f} {UNIT}"
    if hypothesis == "equivalent":
        e = equivalence(a, b, plan.equivalence_margin * abs(d.mean_b), plan.alpha)
        numbers.update(margin=e.margin, tost_p=e.p, low=e.low, high=e.high)
        outcome = {"equivalent": "PASS", "not equivalent": "FAIL", "undecided": "INCONCLUSIVE"}[e.verdict]
        return {"outcome": outcome, "numbers": numbers,
                "reason": f"{what}: {means}; {d.text(UNIT)}; {e.text(UNIT)}"}
    target = d.mean_b
    reach = [steps_to_reach(r["curve"], target, metric) for r in runs[method]]
    reached = [x for x in reach if x is not None]
    numbers.update(steps_to_baseline=statistics.fmean(reached) if reached else None, seeds_reaching=len(reached),
                   budget_steps=plan.steps)
    tokens = (f"; {method} reaches {baseline}'s mean loss at {statistics.fmean(reached) / plan.steps:.0%} of the "
              f"budget ({len(reached)}/{len(reach)} seeds)" if reached else f"; {method} never reaches {baseline}'s mean loss")
    if d.significant:
        outcome = "PASS" if d.difference < 0 else "FAIL"
        points = f"{method} is significantly {d.direction}: the evidence points {'to' if outcome == 'PASS' else 'against'} the claim"
    else:
        outcome = "INCONCLUSIVE"
        points = f"not significant; the means lean {'to' if d.difference < 0 else 'against'} the claim"
    return {"outcome": outcome, "numbers": numbers, "reason": f"{what}: {means}; {d.text(UNIT)}; {points}{tokens}"}


def protocol_comparison(plan_name: str, out_dir: str | Path | None, corpus: str, method: str, baseline: str,
                        hypothesis: str) -> dict:
    """:func:`compare` on the saved results of a plan, INCONCLUSIVE (with the reason) where there are none."""
    plan = load_plan(plan_name)
    folder = Path(out_dir) if out_dir else plan.out_dir()
    if not (folder / "runs").is_dir() or not any((folder / "runs").glob("*.json")):
        shown = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
        return {"outcome": "INCONCLUSIVE", "numbers": {},
                "reason": f"no protocol results in {shown}/runs yet: plan {plan.name} has not been run on a GPU "
                          "(scripts/device_protocol.sh runs it in pieces)"}
    try:
        results = load_results(plan, folder)
    except StaleResult as exc:
        return {"outcome": "INCONCLUSIVE", "numbers": {}, "reason": str(exc)}
    from .plan import progress, progress_text

    out = compare(plan, results, corpus, method, baseline, hypothesis)
    done = progress(plan, results)
    out["numbers"]["progress"] = {k: done[k] for k in ("runs_done", "runs_planned", "tokens_done", "tokens_planned")}
    if not done["complete"]:
        out["reason"] += f" [{progress_text(done)}: incomplete until the rest of the plan runs]"
    return out


#: the protocol's claims: (key, method, baseline, hypothesis, statement); paper_checks/gpu_lm/claims.py registers them
CLAIMS = (
    ("snsm.protocol-fewer-tokens", "adam_sn_sm", "adam", "lower",
     "AdamSNSM reaches AdamW's loss in fewer tokens (at a fixed budget: a lower loss)"),
    ("mars.protocol-beats-adamw", "mars_adamw", "adam", "lower", "MARS-AdamW reaches a lower loss than AdamW"),
    ("ldadam.protocol-matches-adam", "ldadam", "adam", "equivalent", "LDAdam trains as well as Adam (within the margin)"),
    ("fira.protocol-beats-galore", "fira_adamw", "galore_adamw", "lower", "Fira reaches a lower loss than GaLore"),
    ("adarankgrad.protocol-vs-galore", "adarankgrad", "galore_adamw", "equivalent",
     "AdaRankGrad is about as good as GaLore (within the margin)"),
)


def _fmt(x: float | None, spec: str = ".4f") -> str:
    return "–" if x is None else format(x, spec)


def report_markdown(plan: Plan, results: Mapping[str, dict], summary: dict, verdicts: list[dict]) -> str:
    from .plan import progress, progress_text

    prog = progress(plan, results)
    lines = [f"# GPU protocol, plan `{plan.name}`", "", f"{plan.description}.", "",
             f"**Progress: {progress_text(prog)}.**"]
    for name in plan.pieces:
        lines.append(f"- piece `{name}`: " + progress_text(progress(plan, results, name)).split(": ", 1)[1])
    if not prog["complete"]:
        lines += ["", "**The verdicts below are incomplete until the rest of the plan runs**: a comparison whose "
                  "final seeds are missing is INCONCLUSIVE and says what is missing; no verdict is drawn from sweep "
                  "runs (one seed, short budget)."]
    lines += ["", f"Devices: {', '.join(summary['devices']) or 'none yet'}. Significance rule: Welch's t-test over "
              f"the final seeds, two-sided p < {plan.alpha:g}; equivalence by TOST within "
              f"{plan.equivalence_margin:.0%} of the baseline's mean loss (docs/gpu_protocol.md).", ""]
    sched = schedule(plan, results)
    lines += ["## Learning-rate sweeps", "", "| corpus | method | points done | selected | rule |", "|---|---|---|---|---|"]
    for corpus in plan.corpora:
        for method in plan.methods:
            done = [s for s in sched.done.values() if (s.corpus, s.method, s.phase) == (corpus, method, "sweep")]
            sel = sched.selections.get(corpus, {}).get(method)
            chosen = "–" if sel is None else ("none" if sel.lr_scale is None else f"x{sel.lr_scale:g}")
            lines.append(f"| {corpus} | {method} | {len(done)}/{len(plan.sweep.multipliers)} | {chosen} | "
                         f"{'' if sel is None else sel.reason} |")
    for corpus, cs in summary["corpora"].items():
        lines += ["", f"## Final runs: {corpus} ({cs['metric']} evaluation loss, against {cs['baseline']})", "",
                  "| method | rate | seeds | loss mean ± std | gap to H* | steps to baseline's loss | state ratio | "
                  "step-time ratio | tokens/s |", "|---|---|---|---|---|---|---|---|---|"]
        for m, s in cs["methods"].items():
            if not s["complete"]:
                lines.append(f"| {m} | – | – | incomplete: {s['reason']} | | | | | |")
                continue
            met, gap, reach = s["metric"], s.get("gap"), s.get("steps_to_baseline") or {}
            lines.append(
                f"| {m} | x{s['lr_scale']:g} | {len(s['seeds'])} | "
                f"{_fmt(met and met['mean'])} ± {_fmt(met and met['std'])} | {_fmt(gap and gap['mean'])} | "
                f"{_fmt(reach.get('mean'), '.0f')} ({reach.get('reached', 0)}/{len(s['seeds'])}) | "
                f"{_fmt(s.get('state_ratio'), '.3f')} | {_fmt(s.get('step_time_ratio'), '.2f')} | "
                f"{_fmt(s['tokens_per_s'], ',.0f')} |")
    lines += ["", "## Claims (reported: the protocol's data and scale differ from the papers')", "",
              "| claim | corpus | outcome | p | reason |", "|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| {v['claim']} | {v['corpus']} | {v['outcome']} | {_fmt(v['numbers'].get('p'), '.2g')} | "
                     f"{v['reason']} |")
    return "\n".join(lines) + "\n"


def write_report(plan: Plan, out_dir: str | Path | None = None) -> list[Path]:
    """``summary.json`` and ``report.md`` in the plan's results folder, from the saved runs only."""
    from .plan import progress, write_json

    folder = Path(out_dir) if out_dir else plan.out_dir()
    results = load_results(plan, folder)
    summary = summarize(plan, results)
    verdicts = [{"claim": key, "corpus": corpus, "method": method, "baseline": baseline, "hypothesis": hypothesis,
                 "statement": statement, **compare(plan, results, corpus, method, baseline, hypothesis)}
                for key, method, baseline, hypothesis, statement in CLAIMS for corpus in plan.corpora]
    summary["progress"] = progress(plan, results)
    summary["verdicts"] = verdicts
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "summary.json", summary)
    path = folder / "report.md"
    path.write_text(report_markdown(plan, results, summary, verdicts))
    return [folder / "summary.json", path]
