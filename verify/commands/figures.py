"""``verify figures``: regenerate every registered figure from the saved result files.

    verify figures                 # all figures whose results exist
    verify figures --only rates    # one family
    verify figures --list          # the registry (see verify/figures.py to add one)

Figures never rerun experiments; a family whose results are missing is skipped with a message.
"""

from __future__ import annotations

NAME = "figures"
HELP = "regenerate the figures from saved results (matplotlib, Agg)"
DESCRIPTION = __doc__


def add_arguments(parser) -> None:
    parser.add_argument("--only", action="append", metavar="NAME", help="only this figure family (repeatable)")
    parser.add_argument("--root", default=".", help="repository root holding results/ (default: .)")
    parser.add_argument("--out", default=None, help="write every family under OUT/<name> instead of its default place")
    parser.add_argument("--list", action="store_true", help="list the registered figure families")


def run(args) -> int:
    import paper_checks
    from verify.figures import discover, make

    if args.list:
        for name, spec in sorted(discover([paper_checks]).items()):
            print(f"{name:12s} {spec.results:24s} {spec.description}")
        return 0
    from verify.commands._output import refuse_unwritable

    if refuse_unwritable(NAME, folders={"--out": args.out} if args.out else {"--root": args.root}):
        return 2
    try:
        out = make(args.only, root=args.root, out_dir=args.out, packages=[paper_checks])
    except ValueError as exc:
        print(f"error: {exc}")
        return 2
    failed = [k for k, v in out.items() if isinstance(v, str) and v.startswith("error")]
    return 1 if failed else 0
