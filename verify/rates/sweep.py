r"""Run the missing cells of a grid (in parallel processes), then evaluate the checks from the store.

Each worker process runs one cell at a time with one intra-op thread (the tensors are small; two
processes on two cores beat two threads in one), writes the cell's row itself (so a killed sweep
keeps every finished cell) and reports back; the main process draws the progress bar. Cells are
started most expensive first, so the two workers finish together.

**Concurrent sweeps** into one folder share the work cell by cell: a cell is computed under its
lock (:meth:`ResultStore.cell_lock`); a cell whose lock another sweep holds is put aside and
waited for at the end, then reused (or computed, if that sweep died). Nothing is computed twice.

**Executors.** ``executor="local"`` (default) is the process pool described here;
``executor="dask"`` runs the same cells as tasks on a Dask cluster (:mod:`verify.rates.cluster`),
with the same cache, locks, progress bar and rows.

**Workers never outlive the sweep.** On Linux each worker asks the kernel for ``SIGKILL`` when the
process that started it dies (``prctl(PR_SET_PDEATHSIG)``, set in the worker initializer, then a
check that the parent is still the one that started it, which closes the race with a parent that
died first). The kernel delivers it even to a worker busy in a long C call, and a ``kill -9`` of
the sweep leaves nothing running: the workers die at once, and multiprocessing's resource
tracker, which only waits for its last client, exits with them. Elsewhere a daemon thread polls
the parent pid every half second (a watchdog: same outcome, up to half a second later). A worker
that dies (killed, out of memory) breaks the pool; the cells it and its siblings had in flight are
computed again in a fresh pool (at most :data:`MAX_POOL_RESTARTS` times), and the sweep goes on.
"""

from __future__ import annotations

import concurrent.futures as cf
import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .checks import DEFAULT_RESAMPLES, evaluate_checks
from .progress import ProgressBar
from .spec import Cell, Check
from .store import ResultStore

__all__ = ["run_cells", "evaluate", "power_checks", "cost", "mutant_cells", "mutant_for_check", "default_jobs",
           "results_dir", "MAX_POOL_RESTARTS"]

#: how many times a sweep replaces a pool whose worker died before it gives up
MAX_POOL_RESTARTS = 3
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

#: rough relative cost of one seed-step, per problem family and mode (pilot timings; only orders the queue)
_FAMILY_COST = {"separable": 1.0, "matrix_quadratic": 3.0, "robust_regression": 4.0}


def cost(cell: Cell) -> float:
    import algorithms

    family = cell.problem[0]
    per_step = _FAMILY_COST.get(family, 2.0) * (0.4 + cell.seeds / 256)
    name = cell.algorithm.split(":", 1)[-1]
    cls = algorithms.REGISTRY.get(name)
    if cls is not None and not cls.supports_batch_dims:
        per_step *= 2.0 * cell.seeds / 8  # loop mode: one optimizer per seed
    return cell.steps_total * per_step


def default_jobs() -> int:
    return max(1, min(2, os.cpu_count() or 1))


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker die when the sweep that started it dies (see the module docstring)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            armed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
        if armed:
            if os.getppid() != parent_pid:  # the parent died before the signal was armed
                os._exit(1)
            return
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()


def _watch_parent(parent_pid: int, interval: float = 0.5) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(1)


def _init_worker(parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    import torch

    from synthetic.allocator import retain_unless_disabled

    torch.set_num_threads(1)
    retain_unless_disabled()  # spawned workers do not inherit the parent's malloc settings


def _compute_row(cell: Cell) -> dict:
    from .execute import run_cell

    return run_cell(cell)


def _work(cell: Cell, directory: str, *, force: bool, wait: bool, compute: Callable[[Cell], dict]
          ) -> tuple[str, str, float]:
    """Compute ``cell`` under its lock: ``(key, outcome, wall)`` with outcome ``"run"``, ``"reused"``
    (a concurrent sweep stored it first) or ``"busy"`` (a concurrent sweep holds it and ``wait`` is off)."""
    store = ResultStore(directory)
    with store.cell_lock(cell.key, wait=wait) as held:
        if not held:
            return cell.key, "busy", 0.0
        if not force or wait:  # a forced cell put aside for a concurrent sweep is not recomputed again
            row = store.load(cell)
            if row is not None:
                return cell.key, "reused", 0.0
        row = compute(cell)
        store.save(row)
        return cell.key, "run", float(row.get("wall_time", 0.0))


def run_cells(cells: list[Cell], store: ResultStore, *, jobs: int = 1, force: bool = False, progress: bool = True,
              echo: Callable[[str], None] | None = None, compute: Callable[[Cell], dict] | None = None,
              executor: str = "local", scheduler: str | None = None) -> dict:
    """Compute the cells that have no valid row (all of them with ``force``); returns timing statistics.

    ``cells_run`` counts the cells this sweep computed, ``cells_cached`` those it found stored
    (including ``cells_reused``: stored by a concurrent sweep while this one ran). ``compute``
    (a module-level function, so that workers can import it) replaces :func:`run_cell` in tests.
    ``executor="dask"`` runs the cells as tasks on the Dask cluster at ``scheduler`` (a new
    ``LocalCluster`` of ``jobs`` workers when ``None``; :mod:`verify.rates.cluster`); the rows are the same.
    """
    from .cluster import EXECUTORS, require_dask

    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {EXECUTORS}, got {executor!r}")
    if scheduler is not None and executor != "dask":
        raise ValueError("scheduler: only the dask executor connects to a scheduler")
    if executor == "dask":
        require_dask()
    compute = compute or _compute_row
    echo = echo or (lambda line: print(line, file=sys.stderr, flush=True))
    todo = list(cells) if force else store.missing(cells)
    todo.sort(key=cost, reverse=True)
    stats = {"cells_total": len(cells), "cells_run": 0, "cells_cached": len(cells) - len(todo), "cells_reused": 0,
             "pool_restarts": 0, "wall_time": 0.0, "cell_times": {}}
    if not todo:
        return stats
    bar = ProgressBar(len(todo), total_cost=sum(cost(c) for c in todo)) if progress else None
    start = time.perf_counter()

    def finished(cell: Cell, outcome: str, wall: float) -> None:
        if outcome == "run":
            stats["cells_run"] += 1
            stats["cell_times"][cell.key] = wall
        else:
            stats["cells_reused"] += 1
            stats["cells_cached"] += 1
        if bar:
            note = f"{cell.key} {wall:.1f}s" if outcome == "run" else f"{cell.key} (from a concurrent run)"
            bar.update(cost=cost(cell), note=note)

    try:
        if executor == "dask":
            _run_on_dask(todo, store, jobs=jobs, scheduler=scheduler, force=force, compute=compute, finished=finished)
        else:
            busy = _run_pass(todo, store, jobs=jobs, force=force, wait=False, compute=compute, finished=finished,
                             stats=stats, echo=echo)
            if busy:  # held by a concurrent sweep: wait for each, then reuse it (or compute it if that sweep died)
                _run_pass(busy, store, jobs=jobs, force=force, wait=True, compute=compute, finished=finished,
                          stats=stats, echo=echo)
    finally:
        if bar:
            bar.close()
        stats["wall_time"] = time.perf_counter() - start
    return stats


def _run_on_dask(cells: list[Cell], store: ResultStore, *, jobs: int, scheduler: str | None, force: bool, compute,
                 finished) -> None:
    from .cluster import dask_client, dask_pass

    with dask_client(scheduler, jobs) as client:
        busy = dask_pass(cells, store, client, force=force, wait=False, compute=compute, finished=finished, cost=cost)
        if busy:  # held by a concurrent sweep: wait for each, then reuse it (or compute it if that sweep died)
            dask_pass(busy, store, client, force=force, wait=True, compute=compute, finished=finished, cost=cost)


def _run_pass(cells: list[Cell], store: ResultStore, *, jobs: int, force: bool, wait: bool, compute, finished,
              stats: dict, echo) -> list[Cell]:
    """One pass over ``cells``; returns the cells found busy (only when ``wait`` is off)."""
    busy: list[Cell] = []
    directory = str(store.directory)
    if jobs <= 1:
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for cell in cells:
                key, outcome, wall = _work(cell, directory, force=force, wait=wait, compute=compute)
                if outcome == "busy":
                    busy.append(cell)
                else:
                    finished(cell, outcome, wall)
        finally:
            torch.set_num_threads(threads)
        return busy
    pending = list(cells)
    while pending:
        pending = _pool_pass(pending, directory, jobs=jobs, force=force, wait=wait, compute=compute,
                             finished=finished, busy=busy)
        if pending:
            stats["pool_restarts"] += 1
            if stats["pool_restarts"] > MAX_POOL_RESTARTS:
                raise RuntimeError(f"verify rates: worker processes died {stats['pool_restarts']} times; "
                                   f"{len(pending)} cell(s) not computed (the finished ones are saved; rerun)")
            echo(f"verify rates: a worker process died; computing its {len(pending)} unfinished cell(s) "
                 "again in a new pool")
    return busy


def _pool_pass(cells: list[Cell], directory: str, *, jobs: int, force: bool, wait: bool, compute, finished,
               busy: list[Cell]) -> list[Cell]:
    """Run ``cells`` on a process pool; returns the cells lost to a dead worker (empty when none died)."""
    ctx = multiprocessing.get_context("spawn")
    done: set[str] = set()
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker,
                                initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_work, cell, directory, force=force, wait=wait, compute=compute): cell
                   for cell in cells}
        try:
            for fut in cf.as_completed(futures):
                cell = futures[fut]
                try:
                    key, outcome, wall = fut.result()
                except cf.process.BrokenProcessPool:
                    continue
                done.add(cell.key)
                if outcome == "busy":
                    busy.append(cell)
                else:
                    finished(cell, outcome, wall)
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return [c for c in cells if c.key not in done]


def evaluate(cells: list[Cell], checks: list[Check], store: ResultStore, *, n_resamples: int = DEFAULT_RESAMPLES,
             seed: int = 0, power_plan: dict | None = None) -> list[dict]:
    return evaluate_checks(checks, store.rows(cells), n_resamples=n_resamples, seed=seed, power_plan=power_plan)


def power_checks(checks: list[Check]) -> list[Check]:
    """The checks whose power is measured: those that may be asserted (an assertable tag, ``assess``)."""
    from verify.verdicts import assertable

    from .theorems import theorem

    return [c for c in checks if c.assess and assertable(c.provenance or theorem(c.theorem).provenance)]


def mutant_cells(cells: list[Cell], checks: list[Check], mutant: str) -> tuple[list[Cell], list[Check]]:
    """The cells of the mutant's base algorithm with the mutant substituted, and their checks.

    A check keeps its comparison partners (e.g. AdamW for the MARS gap) unchanged.
    """
    from .mutants import MUTANTS

    try:
        m = MUTANTS[mutant]
    except KeyError:
        raise ValueError(f"unknown mutant {mutant!r}; known: {sorted(MUTANTS)}") from None
    renamed = {}
    out_cells = []
    for c in cells:
        if c.algorithm == m.base:
            if m.noise is not None:
                changed = {"noise": (m.noise, {"level": float(c.noise[1].get("level", 1.0))})}
            else:
                changed = {"algorithm": f"mutant:{mutant}"}
            new = replace(c, key=f"{c.key}@{mutant}", label=f"{c.label} [mutant {mutant}]", **changed)
            renamed[c.key] = new.key
            out_cells.append(new)
    out_checks = []
    for ch in checks:
        if ch.algorithm == m.base and any(k in renamed for k in ch.cells):
            new_cells = tuple(renamed.get(k, k) for k in ch.cells)
            out_checks.append(replace(ch, key=f"{ch.key}@{mutant}", cells=new_cells))
    partners = {k for ch in out_checks for k in ch.cells} - set(renamed.values())
    out_cells += [c for c in cells if c.key in partners]
    return out_cells, out_checks


def results_dir(root: str | Path, grid: str, master_seed: int = 0, mutant: str | None = None) -> Path:
    base = Path(root) / grid
    if master_seed:
        base = base / f"master-{master_seed}"
    if mutant:
        base = base / "mutants" / mutant
    return base


def mutant_for_check(cells: list[Cell], checks: list[Check], check_key: str) -> tuple[list[Cell], Check]:
    """The declared mutant of one check: the cells it needs (mutant substituted) and the renamed check."""
    by_key = {c.key: c for c in checks}
    try:
        check = by_key[check_key]
    except KeyError:
        raise ValueError(f"unknown check {check_key!r}") from None
    if not check.mutant:
        raise ValueError(f"check {check_key} declares no mutant")
    needed = [c for c in cells if c.key in check.cells]
    m_cells, m_checks = mutant_cells(needed, [check], check.mutant)
    if not m_checks:
        raise ValueError(f"mutant {check.mutant} does not touch the cells of {check_key}")
    return m_cells, m_checks[0]
