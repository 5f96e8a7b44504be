"""Each paper's claims as executable checks (one module per paper; ``gpu_lm`` holds the GPU runs' claims).

``verify report`` shows the papers in the order of :data:`PAPER_MODULES` and reads the results under
:func:`results_root` (the command passes this package to the report engine, :mod:`verify.report`).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PAPER_MODULES", "results_root"]

#: the paper modules, in the report's order
PAPER_MODULES = ("ldadam", "sn_sm", "mars", "adarankgrad", "galore", "fira", "baselines")


def results_root() -> Path:
    """The ``results/`` folder every claim reads (tests point ``paper_checks._results.RESULTS`` at a copy)."""
    from . import _results

    return Path(_results.RESULTS)
