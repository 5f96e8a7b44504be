"""``verify rates``: convergence-rate checks against each algorithm's theorem (theory.md).

    verify rates --quick                      # every algorithm on the reduced grid (cached, resumable)
    verify rates --quick --algo ldadam        # only the checks of LDAdam (and the cells they need)
    verify rates                              # the full grid
    verify rates --quick --mutant adagrad_norm_no_sqrt   # the base algorithm's checks on a planted bug
    verify rates --quick --list               # cells and checks, without running
    verify rates --quick --no-run             # re-evaluate the verdicts from the stored rows only

Rows go to ``results/rates/<grid>/`` (one JSON per cell; rerunning computes only the missing
cells; ``--master-seed M`` uses ``<grid>/master-M/``, ``--mutant X`` ``<grid>/mutants/X/``); the
verdicts of a complete run (no ``--algo``) to ``verdicts.json`` / ``verdicts.md`` / ``theorems.json``
there. Exit status 1 when an asserted check FAILs (reported claims never fail the command).
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
    parser.add_argument("--force", action="store_true", help="recompute cells even when a valid row is stored")
    parser.add_argument("--mutant", action="append", metavar="NAME", help="run the base algorithm's checks on a planted bug")
    parser.add_argument("--master-seed", type=int, default=0, help="master seed (disjoint seed streams per value)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples per interval")
    parser.add_argument("--list", action="store_true", help="list the cells and checks and exit")
    parser.add_argument("--no-run", action="store_true", help="evaluate the stored rows only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


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
    from verify.rates.store import ResultStore
    from verify.rates.sweep import default_jobs, evaluate, mutant_cells, results_dir, run_cells

    grid = "quick" if args.quick else "full"
    all_cells, all_checks = grid_module.build(grid, args.master_seed)
    try:
        cells, checks = grid_module.cells_for(all_cells, all_checks, args.algo)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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
    status = 0
    for name, c, k in targets:
        directory = results_dir(args.out, grid, args.master_seed, name)
        store = ResultStore(directory)
        stats = {"cells_run": 0, "wall_time": 0.0}
        if not args.no_run:
            stats = run_cells(c, store, jobs=jobs, force=args.force, progress=not args.no_progress)
            print(f"{stats['cells_run']} cell(s) run, {stats.get('cells_cached', 0)} cached, "
                  f"{stats['wall_time']:.1f}s wall with {jobs} job(s)")
        results = evaluate(c, k, store, n_resamples=args.resamples, seed=args.master_seed)
        stored = store.rows(c)
        missing = [ch.key for ch in k if any(key not in stored for key in ch.cells)]
        print(format_table(results))
        if missing:
            print(f"{len(missing)} check(s) not evaluated (cells not computed): {missing}")
        counts = summary_counts(results)
        print(f"asserted: {counts['asserted']}   reported: {counts['reported']}")
        command = "verify rates" + (" --quick" if args.quick else "") + "".join(f" --algo {a}" for a in args.algo or []) + (
            f" --mutant {name}" if name else "")
        meta = {"grid": grid, "master_seed": args.master_seed, "mutant": name, "algorithms": args.algo,
                "command": command, "sweep": {k2: v for k2, v in stats.items() if k2 != "cell_times"},
                "cell_times": stats.get("cell_times", {})}
        if not args.algo:
            write_verdicts(directory, results, meta)
        if name is None and counts["asserted"]["FAIL"]:
            status = 1
    return status
