"""Rate checks in the default suite (``verify check``): two small, fast ones (the sweep is ``verify rates``).

1. GD on P1 at η = 1/L meets the explicit descent bound (1/T)Σ‖∇f‖² <= 2LΔ/T at every horizon and has
   the noiseless slope −1 (theorem ``gd_descent`` [D]); deterministic, two seeds, 2^10 steps (quick) or 2^12.
2. AdaGrad-Norm on P1 with a fixed η: slope −1 at σ = 0 and −1/2 at σ = 1 (noise adaptation [BG]),
   on a reduced grid (32 seeds and T up to 2^11 in quick mode; 128 seeds and 2^14 otherwise).

tests/verify/test_rates_mutants.py shows both fail on their planted bugs (``sgd_double_step``,
``adagrad_norm_not_accumulated``): the functions take the algorithm as an argument for that purpose.
"""

from __future__ import annotations

from dataclasses import replace

from verify.suite import check
from verify.verdicts import Outcome, judged

GROUP = "rates"


def _grid():
    from verify.rates.cells import build

    cells, checks = build("quick")
    by_cell = {c.key: c for c in cells}
    by_check = {c.key: c for c in checks}
    return by_cell, by_check


def _evaluate(cells, checks) -> Outcome:
    from verify.rates.checks import evaluate_check
    from verify.rates.execute import run_cell

    rows = {c.key: run_cell(c) for c in cells}
    results = [evaluate_check(ch, rows, n_resamples=500) for ch in checks]
    passed = all(r["verdict"] == "PASS" for r in results)
    detail = "; ".join(f"{r['key']} {r['verdict']} ({r['estimate']:+.3f})" for r in results)
    return judged(passed, detail, {r["key"]: r["estimate"] for r in results})


@check("GD on P1 under 2LΔ/T with slope −1 (gd_descent)", GROUP)
def gd_descent(quick: bool, algorithm: str = "sgd") -> Outcome:
    by_cell, by_check = _grid()
    horizons = tuple(2**k for k in range(4, 11 if quick else 13))
    cell = replace(by_cell["sgd/gd-p1"], horizons=horizons, algorithm=algorithm)
    checks = [replace(by_check["sgd/gd-bound"], window=(horizons[0], horizons[-1])),
              replace(by_check["sgd/gd-slope"], window=(horizons[-1] // 8, horizons[-1]))]
    return _evaluate([cell], checks)


@check("AdaGrad-Norm noise adaptation on P1: −1 at σ = 0, −1/2 at σ = 1", GROUP, provenance="BG")
def adagrad_norm_noise_adaptation(quick: bool, algorithm: str = "adagrad_norm") -> Outcome:
    by_cell, by_check = _grid()
    top = 11 if quick else 14
    horizons = tuple(2**k for k in range(4, top + 1))
    window = (2 ** (top - 4), 2**top)
    cells = [replace(by_cell["adagrad_norm/p1-noiseless"], horizons=horizons, algorithm=algorithm),
             replace(by_cell["adagrad_norm/p1"], horizons=horizons, seeds=32 if quick else 128, algorithm=algorithm)]
    checks = [replace(by_check["adagrad_norm/noiseless-slope"], window=window),
              replace(by_check["adagrad_norm/noisy-slope"], window=window)]
    return _evaluate(cells, checks)
