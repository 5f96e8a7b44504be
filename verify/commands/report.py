"""``verify report``: every paper's claims, numbers and verdicts in one Markdown file and one HTML page.

    verify report                        # results/report/report.md and report.html, from the saved results
    verify report --refresh-variants     # first rerun the paper-vs-code comparisons (seconds)
    verify report --check                # exit 1 when the committed report differs from a fresh rendering
    verify report --out DIR              # write elsewhere

Nothing else is rerun: the claims read results/ (regenerate those with their engines, see README).
"""

from __future__ import annotations

NAME = "report"
HELP = "write the per-paper report (Markdown and a standalone HTML page) from the saved results"
DESCRIPTION = HELP + " (examples in the module docstring: python -m pydoc verify.commands.report)"


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="results/report", help="folder for report.md and report.html "
                        "(default: results/report)")
    parser.add_argument("--refresh-variants", action="store_true",
                        help="rerun the paper-vs-code comparisons into results/variants first")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when the files in --out differ from a fresh rendering")


def run(args) -> int:
    import paper_checks
    from verify import report as report_mod
    from verify import variants
    from verify.commands._output import refuse_unwritable
    from verify.report.model import COUNT_COLUMNS, verdict_counts

    variants_dir = paper_checks.results_root() / "variants"
    if refuse_unwritable(NAME, folders={"--out": None if args.check else args.out,
                                        "results/variants": variants_dir if args.refresh_variants else None}):
        return 2
    if args.refresh_variants:
        print(f"wrote {variants.write_results(variants_dir)}")
    report = report_mod.build_report(paper_checks)
    if args.check:
        stale = report_mod.stale_files(args.out, report)
        for path in stale:
            print(f"verify report: {path} is not what the results give (run verify report)")
        return 1 if stale else 0
    for path in report_mod.write_report(args.out, report):
        print(f"wrote {path}")
    for s in report.sections:
        counts = ", ".join(f"{n} {v if g == 'asserted' else v.lower()}"
                           for (g, v), n in zip(COUNT_COLUMNS, verdict_counts(s.rows)) if n)
        print(f"  {s.paper}: {len(s.rows)} claims ({counts})")
    return 0
