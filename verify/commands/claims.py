"""``verify claims``: each paper's claims as executable checks (paper_checks/), with verdicts."""

from __future__ import annotations

NAME = "claims"
HELP = "run every paper claim in paper_checks/ and print its verdict (docs/verdicts.md) with the reason"


def add_arguments(parser) -> None:
    parser.add_argument("--paper", action="append", help="only claims whose paper contains this text (repeatable)")
    parser.add_argument("--full", action="store_true", help="full-size checks instead of the quick ones")
    parser.add_argument("--json", metavar="PATH", help="also write the verdicts as JSON")


def run(args) -> int:
    import json

    import paper_checks
    from verify.claims import load_claims, run_claim
    from verify.commands._output import refuse_unwritable
    from verify.verdicts import count_verdicts, exit_status

    if refuse_unwritable(NAME, files={"--json": args.json}):
        return 2

    rows = []
    for c in load_claims(paper_checks):
        if args.paper and not any(p.lower() in c.paper.lower() for p in args.paper):
            continue
        row = run_claim(c, quick=not args.full)
        rows.append(row)
        print(f"[{row['verdict']:<12}] {row['key']:<34} {row['provenance']:<4} {row['reason']}")
    counts = count_verdicts(rows)
    print("asserted: " + ", ".join(f"{n} {v}" for v, n in counts["asserted"].items())
          + "; reported: " + ", ".join(f"{n} {v}" for v, n in counts["reported"].items()))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2, default=str)
    return exit_status(rows)
