"""The four gradient-rank checks (the package docstring states each), as outcomes with provenance.

Each check function returns a :class:`verify.verdicts.Outcome`: PASS/FAIL with the reason, the scalar
numbers the verdict rests on, and in ``data`` the traces that ``verify rank --write`` saves and
:mod:`verify.rank.figures` draws. :data:`CHECKS` gives each its provenance tag; :func:`run_checks` gates
them (:func:`verify.verdicts.gated_row`), so ``verify rank`` and ``verify check`` print one vocabulary.
tests/verify/test_rank.py shows each check failing on planted bugs.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from synthetic import spectrum as sp
from synthetic.metrics import METRICS, state_value
from synthetic.noise import AdditiveNoise
from synthetic.problems import MatrixQuadratic
from synthetic.rng import SeedStreams
from verify.verdicts import Outcome, gated_row, judged

from .runs import agreement, decimate, roundoff_tolerance, run_gd, series, steps_to_floor
from .theory import CLUSTER, EPS_LEVELS, AbcTheory, gapped_problem

__all__ = ["MIN_TESTED_STEPS", "check_lemma33", "check_rank_one_limit", "noise_level", "check_noise_effect",
           "check_adarankgrad_trace", "RankCheck", "CHECKS", "run_checks"]


def _outcome(passed: bool, detail: str, payload: dict[str, Any]) -> Outcome:
    """PASS/FAIL with the payload's scalars as the verdict's numbers and the whole payload as data."""
    numbers = {k: v for k, v in payload.items() if isinstance(v, (bool, int, float, str)) or v is None}
    return judged(passed, detail, numbers, data=payload)


# ----------------------------------------------------------------------------- check 1: Lemma 3.3
MIN_TESTED_STEPS = 50


def check_lemma33(quick: bool = True, *, hyper: dict[str, Any] | None = None,
                  theory_fn: Callable[[MatrixQuadratic], AbcTheory] = AbcTheory.of) -> Outcome:
    """GaLore Lemma 3.3 on the gapped N = 1 instance (module docstring, check 1).

    The bound is compared with the measured stable rank up to the round-off tolerance; it is *tested*
    on the steps where it is informative (bound − sr∞ < 1) and still above round-off (bound − sr∞ >
    tolerance · sr), at least :data:`MIN_TESTED_STEPS` of them. The decay rate of sr − sr∞ is fitted
    (least squares on log) over the steps after the bound became informative where the excess is
    still 100× above round-off, and must not be slower than ρ² per step.
    """
    m, n = (16, 24) if quick else (32, 48)
    top = 4.0 if quick else 10.0  # quick: a condition number of 16 reaches the float floor in ~500 steps
    problem = gapped_problem(m, n, 1, gap=2.0, top=top, seed=0)
    theory = theory_fn(problem)
    trace = run_gd(problem, steps_to_floor(AbcTheory.of(problem), problem), hyper=hyper)
    ok_cf, worst, sr, sr_cf = agreement(trace, theory)
    T = trace.measurable
    steps = trace.steps[:T]
    bound = theory.bound(steps)
    slack = roundoff_tolerance(torch.linalg.matrix_norm(trace.clean[:T]), theory.condition) * sr
    holds = bool((sr <= bound + slack).all())
    gap = bound - theory.sr_limit
    tested = (gap < 1) & (gap > slack)
    informative = (gap < 1).nonzero()
    informative_from = int(informative[0]) if informative.numel() else None
    excess = sr - theory.sr_limit
    usable = ((gap < 1) & (excess > 100 * slack)).nonzero().flatten()
    rate = None
    if usable.numel() >= 10:
        x = usable.to(torch.float64)
        y = excess[usable].log()
        slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
        rate = math.exp(slope)
    fast_enough = rate is not None and rate <= theory.rho**2 * (1 + 1e-9)
    passed = ok_cf and holds and int(tested.sum()) >= MIN_TESTED_STEPS and fast_enough
    detail = (f"{m}x{n}, N=1, spectra {{1}} ∪ [2, {top:g}]: rho^2 = {theory.rho**2:.6f}, fitted rate of sr-sr_inf = "
              f"{rate if rate is None else round(rate, 6)} over {usable.numel()} steps; bound holds on {T} steps: {holds} "
              f"(informative from t = {informative_from}, tested above round-off on {int(tested.sum())}); closed form "
              f"agreement worst {worst:.2g} of tolerance")
    idx = decimate(T)
    payload = {"problem": {"m": m, "n": n, "N": 1, "instance": f"gapped: B, C spectra {{1}} ∪ logspace(2, {top:g})",
                           "seed": 0},
               "theory": theory.summary(), "measurable_steps": T, "observed_late_rate": rate,
               "informative_from": informative_from, "bound_holds": holds, "bound_tested_steps": int(tested.sum()),
               "rate_fit_steps": int(usable.numel()), "closed_form_ok": ok_cf,
               "closed_form_worst_ratio_to_tolerance": worst,
               "trace": {"step": idx, "stable_rank": series(sr, idx), "closed_form": series(sr_cf, idx),
                         "bound": series(bound, idx), "roundoff": series(slack, idx), "kappa": series(sp.rank_one_residual(sp.singular_values(trace.clean[:T])), idx),
                         **{f"energy_rank_{e:g}": series(sp.energy_rank(sp.singular_values(trace.clean[:T]), e), idx)
                            for e in EPS_LEVELS}}}
    return _outcome(passed, detail, payload)


# ----------------------------------------------------------------------------- check 2: the rank-one limit
def check_rank_one_limit(quick: bool = True, *, hyper: dict[str, Any] | None = None,
                         unvec_fn: Callable[[torch.Tensor, int, int], torch.Tensor] | None = None
                         ) -> Outcome:
    m, n = (16, 24) if quick else (32, 48)
    eig_range = (1.0, 4.0) if quick else (1.0, 10.0)  # full: the instances of docs/rank.md §4
    rows, ok, details = {}, True, []
    for N in (1, 4, 16):
        problem = MatrixQuadratic.random(m, n, N, eig_range=eig_range, seed=0)
        theory = AbcTheory.of(problem)
        trace = run_gd(problem, steps_to_floor(theory, problem), hyper=hyper)
        ok_cf, worst, sr, sr_cf = agreement(trace, theory)
        far = theory.closed_form(torch.tensor([10**7]))[0]
        sr_far = float(sp.stable_rank(sp.singular_values(far)))
        if unvec_fn is not None:  # hook for planted bugs in the prediction of the limit
            v1 = theory.eigenvectors[:, (theory.eigenvalues - theory.lambda1).abs() <= CLUSTER * float(theory.eigenvalues[-1])][:, 0]
            limit = float(sp.stable_rank(sp.singular_values(unvec_fn(v1, m, n))))
        else:
            limit = theory.sr_limit
        converges = abs(sr_far - limit) <= 1e-10 * limit
        decomposable = theory.v1_sigma_ratio < 1e-8
        rank_one = abs(limit - 1) < 1e-10
        consistent = (decomposable == rank_one) and (N > 1 or decomposable)
        last = float(sr[-1])
        approaching = abs(last - limit) < 0.05 * abs(float(sr[0]) - limit)
        row_ok = ok_cf and converges and consistent and approaching
        ok &= row_ok
        rows[f"N={N}"] = {"theory": theory.summary(), "measurable_steps": trace.measurable, "closed_form_ok": ok_cf,
                          "closed_form_worst_ratio_to_tolerance": worst, "sr_at_1e7_closed_form": sr_far,
                          "predicted_limit_sr_unvec_v1": limit, "v1_decomposable": decomposable,
                          "limit_is_one": rank_one, "last_measured_sr": last, "first_sr": float(sr[0]),
                          "passed": row_ok,
                          "trace": {"step": decimate(trace.measurable),
                                    "stable_rank": series(sr, decimate(trace.measurable)),
                                    "closed_form": series(sr_cf, decimate(trace.measurable))}}
        details.append(f"N={N}: limit {limit:.5f} ({'rank one' if rank_one else 'not rank one'}), last measured "
                       f"{last:.5f} at t={trace.measurable - 1}")
    return _outcome(ok, "; ".join(details), {"problem": {"m": m, "n": n, "instance": f"MatrixQuadratic.random, eig {list(eig_range)}",
                                               "seed": 0},
                                   "cases": rows})


# ----------------------------------------------------------------------------- check 3: noise
def noise_level(m: int, n: int, sigma: float, draws: int = 64, seed: int = 12345) -> float:
    """Mean stable rank of the noise matrices of :class:`AdditiveNoise` itself (the level the observed
    gradient's stable rank returns to); :func:`synthetic.spectrum.gaussian_stable_rank` is its asymptotic value."""
    noise = AdditiveNoise(sigma)
    x = torch.zeros(draws, m, n, dtype=torch.float64)
    Z = noise.sample(SeedStreams(list(range(seed, seed + draws))), 0, x)
    return float(sp.stable_rank(sp.singular_values(Z)).mean())


def check_noise_effect(quick: bool = True, *, sigma: float = 1e-3, noise_factory=AdditiveNoise,
                       observed_from: str = "observed") -> Outcome:
    m, n = (16, 24) if quick else (32, 48)
    steps = 400 if quick else 3000
    eig_range = (1.0, 4.0) if quick else (1.0, 10.0)
    problem = MatrixQuadratic.random(m, n, 1, eig_range=eig_range, seed=0)
    noisy = run_gd(problem, steps, noise=noise_factory(sigma))
    clean = run_gd(problem, min(steps, steps_to_floor(AbcTheory.of(problem), problem)))  # E[G_t]: the noiseless run
    obs = noisy.observed if observed_from == "observed" else noisy.clean
    s_obs = sp.spectrum(obs, eps=EPS_LEVELS)
    s_clean = sp.spectrum(clean.clean[:clean.measurable], eps=EPS_LEVELS)
    level = noise_level(m, n, sigma)
    tail = max(10, obs.shape[0] // 20)
    final_obs = float(s_obs.stable_rank[-tail:].mean())
    min_obs = float(s_obs.stable_rank.min())
    t_min = int(s_obs.stable_rank.argmin())
    r_obs = s_obs.energy_ranks[0.01].to(torch.float64)
    rises = float(r_obs[-tail:].mean()) > float(r_obs[t_min])
    clean_final = float(s_clean.stable_rank[-1])
    dips = min_obs < 0.5 * float(s_obs.stable_rank[0])
    returns = final_obs >= 0.8 * level
    clean_decays = clean_final < min_obs * 1.05 and clean_final < 0.5 * float(s_clean.stable_rank[0])
    passed = dips and returns and rises and clean_decays
    detail = (f"{m}x{n}, sigma={sigma:g}: observed sr {float(s_obs.stable_rank[0]):.2f} -> min {min_obs:.2f} (t={t_min}) -> "
              f"{final_obs:.2f} (noise level {level:.2f}, asymptotic {sp.gaussian_stable_rank(m, n):.2f}); clean sr -> "
              f"{clean_final:.4f}; r(0.01) observed rises: {rises}")
    idx_n = decimate(obs.shape[0])
    idx_c = decimate(clean.measurable)
    payload = {"problem": {"m": m, "n": n, "N": 1, "sigma": sigma, "seed": 0, "noise": "AdditiveNoise gaussian",
                           "eig_range": list(eig_range)},
               "noise_level": level, "gaussian_stable_rank": sp.gaussian_stable_rank(m, n),
               "observed_min": min_obs, "observed_min_step": t_min, "observed_final": final_obs, "clean_final": clean_final,
               "trace_observed": {"step": idx_n, "stable_rank": series(s_obs.stable_rank, idx_n),
                                  **{f"energy_rank_{e:g}": series(s_obs.energy_ranks[e], idx_n) for e in EPS_LEVELS}},
               "trace_clean": {"step": idx_c, "stable_rank": series(s_clean.stable_rank, idx_c),
                               **{f"energy_rank_{e:g}": series(s_clean.energy_ranks[e], idx_c) for e in EPS_LEVELS}}}
    return _outcome(passed, detail, payload)


# ----------------------------------------------------------------------------- check 4: AdaRankGrad r_t
def check_adarankgrad_trace(quick: bool = True, *, threshold: float = 0.99, sigmas: tuple[float, ...] = (1e-2, 1e-1),
                            name: str = "adarankgrad", hyper: dict[str, Any] | None = None
                            ) -> Outcome:
    """Run AdaRankGrad on the A − BWC problem (clean and noisy) through the synthetic runner with an exact
    SVD and record r_t at every step; at each refresh the chosen rank must equal the energy rank
    r(1 − threshold) of the gradient the optimizer received at that step (clamped to [r_min, r_max])."""
    m, n = (16, 24) if quick else (32, 48)
    steps = 200 if quick else 1000
    eig_range = (1.0, 4.0) if quick else (1.0, 10.0)
    cap = 10
    settings = {"lr": 1e-2, "min_rank": 1, "max_rank": min(m, n), "rank_rule": "energy", "rank_threshold": threshold,
                "svd": "exact", "max_steps_per_subspace": cap}
    settings.update(hyper or {})
    problem = MatrixQuadratic.random(m, n, 1, eig_range=eig_range, seed=0)
    metrics = {"rank": METRICS["basis_rank"], "subspace_step": state_value("subspace_step")}
    out, ok, details = {}, True, []
    runs = [("clean", None)] + [(f"noisy sigma={s:g}", AdditiveNoise(s)) for s in sigmas]
    for label, noise in runs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trace = run_gd(problem, steps, hyper=settings, noise=noise, optimizer=name, metrics=metrics)
        ranks = trace.result.trace["rank"][:, 0].astype(int).tolist()  # after steps 1..T
        sub = trace.result.trace["subspace_step"][:, 0]
        refreshed = [t for t in range(1, steps + 1) if sub[t - 1] == 1]  # reset to 0 and incremented at a refresh
        grads = trace.observed[[t - 1 for t in refreshed]]  # the gradient step t received (at W_{t-1})
        predicted = sp.energy_rank(sp.singular_values(grads), 1 - threshold).clamp(settings["min_rank"],
                                                                                   settings["max_rank"]).tolist()
        chosen = [ranks[t - 1] for t in refreshed]
        agree = chosen == predicted
        ok &= agree and refreshed[:1] == [1]
        low = min(ranks)
        out[label] = {"refresh_steps": refreshed, "chosen_rank": chosen, "energy_rank_of_gradient": predicted,
                      "agree": agree, "rank_trace": ranks, "mean_rank": sum(ranks) / len(ranks), "max_rank": max(ranks),
                      "min_rank": low, "final_rank": ranks[-1], "rises_after_minimum": ranks[-1] > low}
        details.append(f"{label}: r_t {ranks[0]} -> min {low} -> {ranks[-1]} (mean {sum(ranks) / len(ranks):.1f}), "
                       f"rule reproduced at {len(refreshed)} refreshes: {agree}")
    return _outcome(ok, "; ".join(details), {"problem": {"m": m, "n": n, "N": 1, "sigmas": list(sigmas), "seed": 0,
                                               "eig_range": list(eig_range)}, "settings": settings, "runs": out})


# ----------------------------------------------------------------------------- results and figures


# ----------------------------------------------------------------------------- the registry and the runner
@dataclass(frozen=True)
class RankCheck:
    fn: Callable[..., Outcome]  #: fn(quick) -> Outcome
    provenance: str
    title: str


CHECKS: dict[str, RankCheck] = {
    "lemma33": RankCheck(check_lemma33, "P", "GaLore Lemma 3.3: sr(G_t) - sr_inf <= bound, decays at least like "
                         "rho^2 (full-batch GD)"),
    "rank_one_limit": RankCheck(check_rank_one_limit, "D", "AdaRankGrad rank -> 1 holds for N=1; for N>1 the limit "
                                "is sr(unvec v1) > 1"),
    "noise_effect": RankCheck(check_noise_effect, "D", "noise: observed-gradient stable rank climbs back to the noise "
                              "level, clean E[G] keeps decaying"),
    "adarankgrad_trace": RankCheck(check_adarankgrad_trace, "D", "AdaRankGrad r_t at each refresh == energy rank of "
                                   "that gradient (trace recorded)"),
}


def run_checks(names: list[str] | None = None, quick: bool = True, out_dir: str | Path | None = None,
               echo: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """Run the checks ``names`` (default: all) and return their result rows (:func:`verify.verdicts.gated_row`);
    print a verdict per check, and with ``out_dir`` write ``<out_dir>/<check>.json`` (the row, the settings and
    the traces: the input of :func:`verify.rank.figures.make_figures`)."""
    names = list(CHECKS) if names is None else names
    unknown = [s for s in names if s not in CHECKS]
    if unknown:
        raise ValueError(f"unknown rank check(s) {unknown}; known: {list(CHECKS)}")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in names:
        spec = CHECKS[name]
        row, outcome = gated_row(name, lambda: spec.fn(quick), spec.provenance, title=spec.title)
        rows.append(row)
        echo(f"[{row['verdict']}] {name} {row['provenance']}: {row['reason']}")
        if out is not None:
            record = {**row, "quick": quick, "torch": torch.__version__, **(outcome.data if outcome else {})}
            (out / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
    return rows
