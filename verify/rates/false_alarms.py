"""False-alarm rate of the asserted rate checks: how often a correct algorithm's check passes when the
whole grid is rerun with other master seeds (disjoint seed streams, bootstrap reseeded).

    for m in $(seq 1 20); do verify rates --quick --master-seed $m --out DIR; done
    python -m verify.rates.false_alarms DIR --grid quick --write results/rates/quick/false_alarms.json

Reads ``DIR/<grid>/master-<m>/verdicts.json`` (:func:`verify.rates.sweep.results_dir`) for master seeds
1..20 (those present) and counts, per asserted
check, the verdicts. Issue #6's bar: every check PASSes at least 19 times in 20. Reported claims
(CONSISTENT / INCONSISTENT) are tallied too, for information.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterable

from .sweep import results_dir

__all__ = ["tally", "main"]


def tally(root: str | Path, grid: str = "quick", master_seeds: Iterable[int] = range(1, 21), required: int = 19) -> dict:
    """Per-check verdict counts over those ``master_seeds`` whose verdicts exist under ``root``."""
    counts: dict[str, Counter] = defaultdict(Counter)
    asserted: dict[str, bool] = {}
    used = []
    for m in master_seeds:
        path = results_dir(root, grid, m) / "verdicts.json"
        if not path.exists():
            continue
        used.append(m)
        for row in json.loads(path.read_text())["results"]:
            counts[row["key"]][row["verdict"]] += 1
            asserted[row["key"]] = bool(row["asserted"])
    checks = {}
    for key in sorted(counts):
        c = counts[key]
        entry = {"verdicts": dict(c), "runs": sum(c.values()), "asserted": asserted[key]}
        if asserted[key]:
            entry["passes"] = c.get("PASS", 0)
            entry["meets_bar"] = c.get("PASS", 0) >= required * len(used) / 20
        checks[key] = entry
    failing = [k for k, e in checks.items() if e["asserted"] and not e["meets_bar"]]
    return {"grid": grid, "master_seeds": used, "bar": f">= {required} PASS in 20 master seeds",
            "asserted_checks": sum(e["asserted"] for e in checks.values()), "below_bar": failing, "checks": checks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verify.rates.false_alarms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="the --out directory of the master-seed runs")
    ap.add_argument("--grid", default="quick", choices=("quick", "full"))
    ap.add_argument("--write", help="write the tally as JSON here")
    args = ap.parse_args(argv)
    report = tally(args.root, args.grid)
    if not report["master_seeds"]:
        print(f"error: no {args.root}/{args.grid}/master-*/verdicts.json found", file=sys.stderr)
        return 2
    n = len(report["master_seeds"])
    print(f"{n} master seeds: {report['master_seeds']}")
    for key, e in report["checks"].items():
        if e["asserted"]:
            print(f"  {key:50s} PASS {e['passes']:2d}/{e['runs']:2d}  {e['verdicts']}")
    print(f"below the bar ({report['bar']}): {report['below_bar'] or 'none'}")
    if args.write:
        Path(args.write).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.write}")
    return 1 if report["below_bar"] else 0


if __name__ == "__main__":
    sys.exit(main())
