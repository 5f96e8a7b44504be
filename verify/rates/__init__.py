r"""Convergence-rate verification: fit observed rates against each algorithm's theorem (``verify rates``).

Usage::

    verify rates --quick                 # every algorithm, reduced grid (~2 min on 2 cores), cached
    verify rates --quick --algo ldadam   # one algorithm's checks and the cells they need
    verify rates                         # the full grid (about an hour on 2 cores)
    verify rates --quick --mutant galore_full_rank   # a planted bug through its base algorithm's checks
    verify figures --only rates          # the figures, from the saved rows (never reruns)

Pieces:

* :mod:`~verify.rates.theorems` — theorems as data: assumptions (each with its provenance tag), the
  bound as a sympy expression in T, d, σ, L, Δ, δ, η …, the step-size schedule it needs, provenance
  (verified / background / reconstructed). Exponents come from the sympy bound.
* :mod:`~verify.rates.spec` — a *cell* (algorithm, problem, noise, schedule, horizons, seeds, metrics)
  and a *check* (a claim on cells, tied to a theorem, naming the planted bug it must fail).
* :mod:`~verify.rates.cells` — the grids, the cell/check builder with the experiment templates, and the
  collector of the rate entries each method family declares in :mod:`verify.methods`.
* :mod:`~verify.rates.problems` — problem and noise builders over :mod:`synthetic` (plain-data names).
* :mod:`~verify.rates.execute` — runs a cell with :func:`synthetic.run` (anytime or one run per horizon).
* :mod:`~verify.rates.store` — one JSON row per cell (settings, seeds, values, versions, git commit);
  cached by the cell's digest, written atomically, so a killed sweep resumes with the missing cells.
* :mod:`~verify.rates.stats` — seed statistics (mean, (1−δ)-quantiles), log-log slopes with seed
  bootstrap intervals (scipy), verdicts PASS / FAIL / INCONCLUSIVE, and the provenance gate: a
  reconstructed claim is reported (CONSISTENT / INCONSISTENT / INCONCLUSIVE), never passed.
* :mod:`~verify.rates.checks` — evaluates claims on stored rows (slope, explicit bound, slope gap,
  ordering, δ-dependence, d-exponent).
* :mod:`~verify.rates.mutants` — planted-bug optimizers the checks must fail (tests/verify/test_rates_mutants.py).
* :mod:`~verify.rates.sweep`, :mod:`~verify.rates.report`, :mod:`~verify.rates.figures`,
  :mod:`~verify.rates.progress` — orchestration (parallel workers), tables, figures, progress bar.

Adding a rate check: in the method's module of :mod:`verify.methods`, declare the theorem
(:func:`~verify.rates.theorems.declare`, if new), a rate entry (:func:`~verify.rates.cells.rate_entry`:
a figure and a position) that adds the cell(s) and the check with ``mutants=`` naming a bug the check
must FAIL, and that bug (:func:`~verify.rates.mutants.declare`); ``tests/verify/test_rates_mutants.py``
enforces that every check names an existing mutant of its algorithm.
"""
