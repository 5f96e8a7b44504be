"""Helpers for tests/verify/test_rates_concurrency.py, importable by spawned sweep workers.

``python -m tests.verify.rates_sweep_helpers DIR LOG N_CELLS JOBS`` runs one sweep of ``N_CELLS``
tiny cells into ``DIR`` and prints its statistics as JSON. Each cell is computed by
:func:`logged_slow_cell`, which appends ``start KEY PID`` and ``done KEY PID`` lines to ``LOG`` and
sleeps ``OPTVERIFY_TEST_CELL_DELAY`` seconds in between, so tests can see which process computed
what, and kill processes while cells are in flight.
"""

from __future__ import annotations

import json
import os
import sys
import time

from verify.rates.execute import run_cell
from verify.rates.spec import Cell

LOG_ENV = "OPTVERIFY_TEST_CELL_LOG"
DELAY_ENV = "OPTVERIFY_TEST_CELL_DELAY"


def tiny_cells(n: int) -> list[Cell]:
    return [Cell(key=f"t/c{i}", algorithm="adagrad_norm", hyper={"b0": 1.0 + i, "eps": 0.0},
                 problem=("separable", {"d": 4}), noise=("isotropic", {"level": 0.5}),
                 schedule={"kind": "constant", "eta": 0.5}, horizons=(8, 16), seeds=2) for i in range(n)]


def _log(event: str, key: str) -> None:
    with open(os.environ[LOG_ENV], "a") as fh:  # one short O_APPEND write per line: lines never interleave
        fh.write(f"{event} {key} {os.getpid()}\n")


def logged_slow_cell(cell: Cell) -> dict:
    _log("start", cell.key)
    time.sleep(float(os.environ.get(DELAY_ENV, "0")))
    row = run_cell(cell)
    _log("done", cell.key)
    return row


def read_log(path) -> list[tuple[str, str, int]]:
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [(e, k, int(p)) for e, k, p in (line.split() for line in fh if line.strip())]


def main(argv: list[str]) -> None:
    from verify.rates.store import ResultStore
    from verify.rates.sweep import run_cells

    directory, log, n, jobs = argv[0], argv[1], int(argv[2]), int(argv[3])
    os.environ[LOG_ENV] = log
    stats = run_cells(tiny_cells(n), ResultStore(directory), jobs=jobs, progress=False, compute=logged_slow_cell)
    print(json.dumps({k: v for k, v in stats.items() if k != "cell_times"}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
