"""Convergence-rate verification: fit observed rates against each algorithm's theorem (``verify rates``).

* :mod:`verify.rates.theorems` — theorems as data (assumptions, sympy bound, schedule, provenance);
* :mod:`verify.rates.spec` — cells (algorithm, problem, noise, schedule, horizons, seeds) and checks;
* :mod:`verify.rates.cells` — the experiments of theory.md on a quick and a full grid;
* :mod:`verify.rates.execute` — run a cell with :func:`synthetic.run`;
* :mod:`verify.rates.store` — one JSON row per cell, cached and resumable;
* :mod:`verify.rates.stats` — log-log slopes with seed-bootstrap intervals, quantiles, verdicts;
* :mod:`verify.rates.checks` — evaluate claims on stored rows;
* :mod:`verify.rates.mutants` — planted-bug optimizers the checks must fail;
* :mod:`verify.rates.sweep`, :mod:`verify.rates.report`, :mod:`verify.rates.figures` — orchestration,
  tables, figures.
"""
