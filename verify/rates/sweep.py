r"""Run the missing cells of a grid (in parallel processes), then evaluate the checks from the store.

Each worker process runs one cell at a time with one intra-op thread (the tensors are small; two
processes on two cores beat two threads in one), writes the cell's row itself (so a killed sweep
keeps every finished cell) and reports back; the main process draws the progress bar. Cells are
started most expensive first, so the two workers finish together.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from .checks import DEFAULT_RESAMPLES, evaluate_checks
from .progress import ProgressBar
from .spec import Cell, Check
from .store import ResultStore

__all__ = ["run_cells", "evaluate", "power_checks", "cost", "mutant_cells", "mutant_for_check", "default_jobs", "results_dir"]

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


def _init_worker() -> None:
    import torch

    from synthetic.allocator import retain_unless_disabled

    torch.set_num_threads(1)
    retain_unless_disabled()  # spawned workers do not inherit the parent's malloc settings


def _work(cell: Cell, directory: str) -> tuple[str, float]:
    from .execute import run_cell

    row = run_cell(cell)
    ResultStore(directory).save(row)
    return cell.key, row["wall_time"]


def run_cells(cells: list[Cell], store: ResultStore, *, jobs: int = 1, force: bool = False, progress: bool = True,
              echo: Callable[[str], None] | None = None) -> dict:
    """Compute the cells that have no valid row (all of them with ``force``); returns timing statistics."""
    todo = list(cells) if force else store.missing(cells)
    todo.sort(key=cost, reverse=True)
    stats = {"cells_total": len(cells), "cells_run": len(todo), "cells_cached": len(cells) - len(todo),
             "wall_time": 0.0, "cell_times": {}}
    if not todo:
        return stats
    bar = ProgressBar(len(todo), total_cost=sum(cost(c) for c in todo)) if progress else None
    start = time.perf_counter()
    try:
        if jobs <= 1:
            import torch

            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                for cell in todo:
                    key, wall = _work(cell, str(store.directory))
                    stats["cell_times"][key] = wall
                    if bar:
                        bar.update(cost=cost(cell), note=f"{key} {wall:.1f}s")
            finally:
                torch.set_num_threads(threads)
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as pool:
                futures = {pool.submit(_work, cell, str(store.directory)): cell for cell in todo}
                try:
                    for fut in cf.as_completed(futures):
                        cell = futures[fut]
                        key, wall = fut.result()
                        stats["cell_times"][key] = wall
                        if bar:
                            bar.update(cost=cost(cell), note=f"{key} {wall:.1f}s")
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        if bar:
            bar.close()
        stats["wall_time"] = time.perf_counter() - start
    return stats


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
