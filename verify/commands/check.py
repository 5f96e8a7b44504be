"""``verify check``: the default verification suite (what `make check` runs)."""

from __future__ import annotations

NAME = "check"
HELP = "run the default verification suite and print a verdict per check"


def add_arguments(parser) -> None:
    parser.add_argument("--group", action="append", help="only these groups (repeatable)")
    parser.add_argument("--full", action="store_true", help="full-size grids instead of the quick ones")
    parser.add_argument("--json", metavar="PATH", help="write the verdicts as JSON")


def run(args) -> int:
    import json

    from verify.commands._output import refuse_unwritable
    from verify.suite import run_suite

    if refuse_unwritable(NAME, files={"--json": args.json}):
        return 2

    rows = run_suite(args.group, quick=not args.full)
    n_fail = sum(not r["passed"] for r in rows)
    print(f"{len(rows) - n_fail} passed, {n_fail} failed")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    return 1 if n_fail else 0
