r"""How long a sweep takes on N workers: the measured per-cell overhead of each executor and the expected
wall time of a grid from its cells' measured times (the README's scaling table).

    python -m verify.rates.scaling --measure --write results/rates/scaling.json   # measure, then tabulate
    python -m verify.rates.scaling --table results/rates/scaling.json             # the table again

**Overhead.** Sweeps of ``n`` cells that compute nothing (:func:`noop_row`: the executor's own work
alone — pickling the cell, the task queue, the lock, writing the row) run on each executor with the
same number of workers, for two values of ``n``; each wall time is fitted as ``a + b·n``. ``a`` is the
start-up (spawning the pool or starting the ``LocalCluster``, importing torch in the workers) and
``b·jobs`` the overhead a cell adds to its computation on a worker.

**Expected wall time** of a grid on N workers: the cells are handed out most expensive first to the
first free worker (what both executors do; the sweep orders by estimated cost, here by measured time),
each cell costing its measured ``wall_time`` plus the executor's per-cell overhead, plus the start-up.
The longest cell bounds it from below whatever N is. The quick grid's times are the committed rows'
(``results/rates/quick``); the full grid has no committed rows, so each of its cells is estimated from
its cost model (:func:`verify.rates.sweep.cost`) times the seconds per cost unit that the committed quick
rows of the same algorithm measured (the pooled ratio for an algorithm without quick rows).
"""

from __future__ import annotations

import argparse
import heapq
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["bench_cells", "list_schedule", "measure_overhead", "grid_times", "scaling_rows", "format_table"]

WORKERS = (1, 2, 4, 8, 16, 32, 64)


def list_schedule(times: list[float], workers: int, *, overhead: float = 0.0) -> float:
    """Makespan of ``times`` (each plus ``overhead``) handed out longest first to the first free of ``workers``."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    free = [0.0] * workers
    for t in sorted(times, reverse=True):
        heapq.heappush(free, heapq.heappop(free) + t + overhead)
    return max(free)


def bench_cells(n: int) -> list:
    """``n`` distinct small cells (AdaGrad-Norm on a 4-d separable problem)."""
    from .spec import Cell

    return [Cell(key=f"bench/c{i}", algorithm="adagrad_norm", hyper={"b0": 1.0 + i, "eps": 0.0},
                 problem=("separable", {"d": 4}), noise=("isotropic", {"level": 0.5}),
                 schedule={"kind": "constant", "eta": 0.5}, horizons=(64, 128), seeds=4) for i in range(n)]


def noop_row(cell) -> dict:
    """A row computed by doing nothing: what is left of a sweep is the executor's own work per cell."""
    return {"key": cell.key, "digest": cell.digest(), "spec": cell.spec(), "values": {}, "runs": [], "wall_time": 0.0}


def _sweep_wall(executor: str, jobs: int, n: int) -> float:
    from .store import ResultStore
    from .sweep import run_cells

    cells = bench_cells(n)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run_cells(cells, ResultStore(tmp), jobs=jobs, progress=False, executor=executor, compute=noop_row)
        return time.perf_counter() - start


def measure_overhead(jobs: int = 2, counts: tuple[int, int] = (100, 400), repeats: int = 3) -> dict:
    """Start-up and per-cell overhead of each executor on ``jobs`` workers (see the module docstring).

    Each executor's wall time for ``n`` cells that compute nothing (:func:`noop_row`) is fitted as
    ``a + b·n`` over the two cell counts; ``b·jobs`` is what a cell costs a worker on top of its
    computation, ``a`` the start-up. Medians over ``repeats`` (the executors alternate, so a busy
    period of the shared machine hits both).
    """
    fits: dict[str, list[dict]] = {"local": [], "dask": []}
    for _ in range(repeats):
        for executor in fits:
            w1, w2 = (_sweep_wall(executor, jobs, n) for n in counts)
            slope = (w2 - w1) / (counts[1] - counts[0])
            fits[executor].append({"startup_s": w1 - slope * counts[0], "per_cell_overhead_s": slope * jobs,
                                   "walls_s": [w1, w2]})
    out = {"jobs": jobs, "counts": list(counts), "repeats": repeats, "executors": {}}
    for executor, runs in fits.items():
        out["executors"][executor] = {"startup_s": statistics.median(f["startup_s"] for f in runs),
                                      "per_cell_overhead_s": statistics.median(f["per_cell_overhead_s"] for f in runs),
                                      "runs": runs}
    return out


def grid_times(grid: str, rows_dir: str | Path) -> tuple[list[float], str]:
    """Each cell's time in seconds (grid cells and power alternatives) and where the numbers come from."""
    import numpy as np

    from . import cells as grid_module
    from .power import alternative_grid
    from .store import ResultStore
    from .sweep import cost, power_checks

    quick, quick_checks = grid_module.build("quick", 0)
    quick += alternative_grid(quick, power_checks(quick_checks))[0]
    measured = ResultStore(rows_dir).rows(quick)
    if grid == "quick":
        return [float(r["wall_time"]) for r in measured.values()], f"measured ({len(measured)} committed rows)"
    by_algo: dict[str, list[tuple[float, float]]] = {}
    for c in quick:
        if c.key in measured:
            by_algo.setdefault(c.algorithm, []).append((float(measured[c.key]["wall_time"]), cost(c)))
    pooled = sum(t for v in by_algo.values() for t, _ in v) / sum(k for v in by_algo.values() for _, k in v)
    ratio = {a: float(np.sum([t for t, _ in v]) / np.sum([k for _, k in v])) for a, v in by_algo.items()}
    cells, checks = grid_module.build(grid, 0)
    cells += alternative_grid(cells, power_checks(checks))[0]
    return [cost(c) * ratio.get(c.algorithm, pooled) for c in cells], \
        "estimated: cost model x the quick rows' seconds per cost unit, per algorithm"


def scaling_rows(times: list[float], overhead: dict, workers=WORKERS) -> list[dict]:
    out = []
    for n in workers:
        row = {"workers": n}
        for executor, o in overhead["executors"].items():
            row[executor] = o["startup_s"] + list_schedule(times, n, overhead=max(0.0, o["per_cell_overhead_s"]))
        out.append(row)
    return out


def _fmt(seconds: float) -> str:
    from .progress import format_seconds

    return format_seconds(seconds)


def format_table(result: dict) -> str:
    lines = []
    for grid, g in result["grids"].items():
        lines.append(f"{grid} grid: {g['cells']} cells, {_fmt(g['total_s'])} of cell time ({g['source']}); "
                     f"longest cell {_fmt(g['longest_s'])}")
        lines.append("")
        lines.append("| workers | local pool | dask |")
        lines.append("|---|---|---|")
        for r in g["rows"]:
            lines.append(f"| {r['workers']} | {_fmt(r['local'])} | {_fmt(r['dask'])} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verify.rates.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help="measure the executors' overheads (a few minutes)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", default=str(Path(__file__).resolve().parents[2] / "results" / "rates" / "quick"),
                        help="the committed quick rows (cell times)")
    parser.add_argument("--write", default=None, help="write the measurement and the tables as JSON")
    parser.add_argument("--table", default=None, help="tabulate a JSON written by --write")
    args = parser.parse_args(argv)
    if args.table:
        print(format_table(json.loads(Path(args.table).read_text())))
        return 0
    if not args.measure:
        parser.error("--measure or --table")
    overhead = measure_overhead(args.jobs, repeats=args.repeats)
    result = {"overhead": overhead, "grids": {}}
    for grid in ("quick", "full"):
        times, source = grid_times(grid, args.rows)
        result["grids"][grid] = {"cells": len(times), "total_s": sum(times), "longest_s": max(times), "source": source,
                                 "rows": scaling_rows(times, overhead)}
    for executor, o in overhead["executors"].items():
        print(f"{executor}: start-up {o['startup_s']:.2f}s, per-cell overhead {o['per_cell_overhead_s'] * 1e3:.1f} ms "
              f"({args.jobs} workers)")
    print(format_table(result))
    if args.write:
        Path(args.write).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
