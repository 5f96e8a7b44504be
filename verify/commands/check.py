"""``verify check``: the default verification suite (what `make check` runs)."""

from __future__ import annotations

NAME = "check"
HELP = "run the default verification suite and print a verdict per check (docs/verdicts.md)"


def add_arguments(parser) -> None:
    parser.add_argument("--group", action="append", help="only these groups (repeatable)")
    parser.add_argument("--full", action="store_true", help="full-size grids instead of the quick ones")
    parser.add_argument("--json", metavar="PATH", help="write the verdicts as JSON")


def run(args) -> int:
    import json

    from verify.commands._output import refuse_unwritable
    from verify.suite import run_suite
    from verify.verdicts import count_verdicts, exit_status

    if refuse_unwritable(NAME, files={"--json": args.json}):
        return 2

    rows = run_suite(args.group, quick=not args.full)
    counts = count_verdicts(rows)
    print("asserted: " + ", ".join(f"{n} {v}" for v, n in counts["asserted"].items() if n)
          + "; reported: " + (", ".join(f"{n} {v}" for v, n in counts["reported"].items() if n) or "none"))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return exit_status(rows)
