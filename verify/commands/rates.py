"""``verify rates``: convergence-rate checks against each algorithm's theorem (docs/rates.md).

    verify rates --quick                      # every algorithm on the reduced grid (cached, resumable)
    verify rates --quick --algo ldadam        # only the checks of LDAdam (and the cells they need)
    verify rates                              # the full grid
    verify rates --quick --mutant adagrad_norm_no_sqrt   # the base algorithm's checks on a planted bug
    verify rates --quick --list               # cells and checks, without running
    verify rates --quick --no-run             # re-evaluate the verdicts from the stored rows only
    verify rates --quick --power              # also run every asserted check's alternatives (its power)
    verify rates --quick --regression --out /tmp/fresh   # recompute and compare with the committed results
    verify rates --executor dask --jobs 8                # the cells as tasks on a local Dask cluster of 8 workers
    verify rates --executor dask --scheduler tcp://HOST:8786   # ... on an existing Dask cluster (SLURM, Kubernetes)

Rows go to ``results/rates/<grid>/`` (one JSON per cell; rerunning computes only the missing
cells; ``--master-seed M`` uses ``<grid>/master-M/``, ``--mutant X`` ``<grid>/mutants/X/``); the
verdicts of a complete run (no ``--algo``) to ``verdicts.json`` / ``verdicts.md`` / ``theorems.json``
there. Exit status 1 when an asserted check FAILs or errors (reported claims never fail the command),
or, with ``--regression``, when an estimate moved beyond the tolerance from the committed clean value.
Exit status 2, before any work, when rows would be computed from code that differs from its commit,
or stored rows computed that way would be judged, unless ``--allow-dirty`` (each row records its
git state, :mod:`verify.rates.store`).

``--power`` runs, for every assertable check, the alternatives it must reject (other step-size
exponents, the rates the paper improves on, planted bugs; :mod:`verify.rates.power`); a check that
does not reject them all is reported, not asserted. Their rows live next to the grid's
(``<cell>@<alternative>.json``), so ``--no-run`` re-evaluates the power too.
"""

from __future__ import annotations

NAME = "rates"
HELP = "fit convergence rates of every algorithm against its theorem (PASS/FAIL/INCONCLUSIVE)"
DESCRIPTION = __doc__


def add_arguments(parser) -> None:
    parser.add_argument("--algo", action="append", metavar="NAME", help="only the checks of this algorithm (repeatable)")
    parser.add_argument("--quick", action="store_true", help="the reduced grid (every algorithm, <= 10 min on 2 cores)")
    parser.add_argument("--out", default="results/rates", help="results root (default results/rates)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: min(2, CPU count))")
    parser.add_argument("--executor", choices=("local", "dask"), default="local",
                        help="where cells run: a local process pool (default) or a Dask cluster (the cluster extra)")
    parser.add_argument("--scheduler", metavar="ADDRESS", default=None,
                        help="with --executor dask: the scheduler to connect to (default: a LocalCluster of --jobs workers)")
    parser.add_argument("--force", action="store_true", help="recompute cells even when a valid row is stored")
    parser.add_argument("--mutant", action="append", metavar="NAME", help="run the base algorithm's checks on a planted bug")
    parser.add_argument("--master-seed", type=int, default=0, help="master seed (disjoint seed streams per value)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per interval")
    parser.add_argument("--list", action="store_true", help="list the cells and checks and exit")
    parser.add_argument("--no-run", action="store_true", help="evaluate the stored rows only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--asserted-only", action="store_true",
                        help="only the checks that may be asserted and their cells (the false-alarm reruns)")
    parser.add_argument("--power", action="store_true",
                        help="also run the alternatives each asserted check must reject (schedule exponents, the rates "
                             "the paper beats, planted bugs)")
    parser.add_argument("--regression", action="store_true",
                        help="compare every estimate with the committed clean results (--baseline); exit 1 on a change "
                             "beyond --tolerance standard errors")
    parser.add_argument("--baseline", default=None,
                        help="results root holding the reference verdicts.json (default: results/rates of this checkout)")
    parser.add_argument("--tolerance", type=float, default=4.0, help="regression tolerance in bootstrap SEs (default 4)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="compute (or judge) rows although the code differs from its commit; such rows record "
                             "git_dirty and never serve as a regression baseline")


def _print_listing(cells, checks) -> None:
    from verify.rates.sweep import cost

    print(f"{len(cells)} cells")
    for c in cells:
        print(f"  {c.key:42s} {c.algorithm:22s} T={c.horizons[0]}..{c.horizons[-1]} S={c.seeds} "
              f"steps={c.steps_total} cost~{cost(c) / 1e3:.0f}k")
    print(f"{len(checks)} checks")
    for ch in checks:
        print(f"  {ch.key:44s} {ch.kind:6s} {ch.theorem:32s} {ch.claim}")


def run(args) -> int:
    import sys

    from verify.rates import cells as grid_module
    from verify.rates.report import format_table, summary_counts, write_verdicts
    from verify.rates.store import ResultStore, dirty_refusal
    from verify.rates.power import alternative_grid
    from verify.rates.sweep import default_jobs, evaluate, mutant_cells, power_checks, results_dir, run_cells

    grid = "quick" if args.quick else "full"
    all_cells, all_checks = grid_module.build(grid, args.master_seed)
    try:
        cells, checks = grid_module.cells_for(all_cells, all_checks, args.algo)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.asserted_only:
        from verify.rates.sweep import power_checks

        checks = power_checks(checks)
        needed = {k for ch in checks for k in ch.cells}
        cells = [c for c in cells if c.key in needed]
    if args.algo and not checks:
        known = sorted(grid_module.algorithms_covered(all_checks))
        print(f"error: no checks for {args.algo}; algorithms with checks: {known}", file=sys.stderr)
        return 2
    targets = [(None, cells, checks)]
    if args.mutant:
        targets = []
        for name in args.mutant:
            try:
                mc, mk = mutant_cells(all_cells, all_checks, name)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
            targets.append((name, mc, mk))
    from verify.commands._output import refuse_unwritable

    if not args.list and refuse_unwritable(NAME, folders={"--out": args.out}):
        return 2
    if args.list:
        for name, c, k in targets:
            if name:
                print(f"mutant {name}:")
            _print_listing(c, k)
        return 0
    jobs = args.jobs or default_jobs()
    if args.scheduler and args.executor != "dask":
        print("error: --scheduler needs --executor dask", file=sys.stderr)
        return 2
    if args.executor == "dask" and not args.no_run:
        from verify.rates.cluster import require_dask

        try:
            require_dask()
        except ImportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    where = f"{jobs} job(s)" if args.executor == "local" else (
        f"the Dask cluster at {args.scheduler}" if args.scheduler else f"a local Dask cluster of {jobs} worker(s)")
    status = 0
    for name, c, k in targets:
        directory = results_dir(args.out, grid, args.master_seed, name)
        store = ResultStore(directory)
        stats = {"cells_run": 0, "wall_time": 0.0}
        alt_cells, plan = alternative_grid(c, power_checks(k)) if name is None else ([], {})
        todo = c + (alt_cells if args.power else [])
        if not args.allow_dirty:
            computing = not args.no_run and bool(args.force or store.missing(todo))
            replaced = args.force and not args.no_run  # --force recomputes every row: the stored ones are not used
            refusal = dirty_refusal(computing=computing, stored={} if replaced else store.rows(c + alt_cells))
            if refusal:
                print(f"verify rates: refusing: {refusal}. Commit the change (or recompute from a clean tree), or pass "
                      "--allow-dirty.", file=sys.stderr)
                return 2
        if not args.no_run:
            stats = run_cells(todo, store, jobs=jobs, force=args.force, progress=not args.no_progress,
                              executor=args.executor, scheduler=args.scheduler)
            print(f"{stats['cells_run']} cell(s) run, {stats.get('cells_cached', 0)} cached, "
                  f"{stats['wall_time']:.1f}s wall on {where}")
        results = evaluate(c + alt_cells, k, store, n_resamples=args.resamples, seed=args.master_seed, power_plan=plan)
        stored = store.rows(c)
        missing = [ch.key for ch in k if any(key not in stored for key in ch.cells)]
        print(format_table(results))
        if missing:
            print(f"{len(missing)} check(s) not evaluated (cells not computed): {missing}")
        counts = summary_counts(results)
        print(f"asserted: {counts['asserted']}   reported: {counts['reported']}")
        command = "verify rates" + (" --quick" if args.quick else "") + "".join(f" --algo {a}" for a in args.algo or []) + (
            f" --mutant {name}" if name else "") + (" --asserted-only" if args.asserted_only else "") + (
            f" --master-seed {args.master_seed}" if args.master_seed else "")
        if args.power or any(r.get("power", {}).get("measured") for r in results):
            command += " --power"  # the verdicts include measured power (also when --no-run read stored alternatives)
        meta = {"grid": grid, "master_seed": args.master_seed, "mutant": name, "algorithms": args.algo,
                "command": command, "sweep": {k2: v for k2, v in stats.items() if k2 != "cell_times"},
                "cell_times": stats.get("cell_times", {})}
        if not args.algo:
            write_verdicts(directory, results, meta, other_grid=not (args.asserted_only or args.master_seed or name))
        if name is None and (counts["asserted"]["FAIL"] or counts["asserted"]["ERROR"]):
            status = 1
        if args.regression and name is None:
            from pathlib import Path

            from verify.rates.regression import compare_with_baseline, format_regression

            baseline = Path(args.baseline) if args.baseline else Path(__file__).resolve().parents[2] / "results" / "rates"
            report = compare_with_baseline(results, store.rows(c), results_dir(baseline, grid, args.master_seed),
                                           tolerance=args.tolerance)
            print(format_regression(report))
            if report["failed"]:
                status = 1
    return status
