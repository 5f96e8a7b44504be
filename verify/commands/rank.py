"""``verify rank``: gradient-rank decay checks on the A − BWC problem (:mod:`verify.rank`).

    verify rank                          # quick instances (16×24), a verdict per check
    verify rank --full                   # the 32×48 instances of docs/rank.md §4
    verify rank --write results/rank     # also write <check>.json with the traces
    verify rank --figures results/rank --out figures/   # draw the figures from saved results (no rerun)
    verify rank --only lemma33,noise_effect
"""

from __future__ import annotations

NAME = "rank"
HELP = "gradient-rank decay: GaLore Lemma 3.3, the rank-one limit, the noise effect, AdaRankGrad's r_t"
DESCRIPTION = HELP + " (examples in the module docstring: python -m pydoc verify.commands.rank)"


def add_arguments(parser) -> None:
    parser.add_argument("--full", action="store_true", help="the 32x48 instances of docs/rank.md §4 (slower)")
    parser.add_argument("--only", default=None, help="comma-separated subset of: lemma33, rank_one_limit, "
                        "noise_effect, adarankgrad_trace")
    parser.add_argument("--write", metavar="DIR", default=None, help="write <check>.json results to DIR")
    parser.add_argument("--figures", metavar="RESULTS_DIR", default=None,
                        help="only draw the figures from the results in RESULTS_DIR (nothing is rerun)")
    parser.add_argument("--out", default="figures", help="where --figures writes PNGs (default: figures/)")


def run(args) -> int:
    from verify import rank
    from verify.commands._output import refuse_unwritable
    from verify.verdicts import exit_status

    if refuse_unwritable(NAME, folders={"--write": args.write, "--out": args.out if args.figures else None}):
        return 2

    if args.figures:
        for path in rank.make_figures(args.figures, args.out):
            print(f"wrote {path}")
        return 0
    names = None if not args.only else [s.strip() for s in args.only.split(",") if s.strip()]
    try:
        rows = rank.run_checks(names, quick=not args.full, out_dir=args.write, echo=lambda line: print(line, flush=True))
    except ValueError as exc:
        print(f"verify rank: {exc}")
        return 2
    return exit_status(rows)
