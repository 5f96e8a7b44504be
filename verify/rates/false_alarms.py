"""False-alarm rate of the asserted rate checks: how often a correct algorithm's check fails to PASS when
the grid is rerun with other master seeds (disjoint noise streams, another problem instance, the
bootstrap reseeded).

    for m in $(seq 1 59); do verify rates --quick --asserted-only --master-seed $m --out DIR; done
    python -m verify.rates.false_alarms DIR --grid quick --reference results/rates/quick/verdicts.json \
        --write results/rates/quick/false_alarms.json

Reads ``DIR/<grid>/master-<m>/verdicts.json`` (:func:`verify.rates.sweep.results_dir`) for every master seed
present and counts, per asserted check, the verdicts. The bar: every run PASSes. With n passes out of
n runs the one-sided 95 % Clopper–Pearson upper bound on the false-alarm rate is 1 − 0.05^(1/n), below 5 %
from n = 59 on; the tally reports the bound for each check whatever its count. Reported claims are
tallied too, for information.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path

__all__ = ["tally", "clopper_pearson_upper", "main", "REQUIRED_RUNS"]

#: n/n passes bound the false-alarm rate below 5 % (one-sided 95 % Clopper–Pearson) from n = 59 on
REQUIRED_RUNS = 59


def clopper_pearson_upper(failures: int, runs: int, confidence: float = 0.95) -> float:
    """One-sided upper confidence bound on a failure probability after ``failures`` in ``runs`` trials."""
    from scipy.stats import beta

    if runs < 1 or not 0 <= failures <= runs:
        raise ValueError(f"need 0 <= failures <= runs and runs >= 1, got {failures}/{runs}")
    if failures == runs:
        return 1.0
    return float(beta.ppf(confidence, failures + 1, runs - failures))


def _master_dirs(root: Path, grid: str) -> list[tuple[int, Path]]:
    out = []
    for d in sorted((root / grid).glob("master-*")):
        m = re.fullmatch(r"master-(\d+)", d.name)
        if m and (d / "verdicts.json").exists():
            out.append((int(m.group(1)), d / "verdicts.json"))
    return sorted(out)


def tally(root: str | Path, grid: str = "quick", required: int = REQUIRED_RUNS, reference: str | Path | None = None) -> dict:
    """Per-check verdict counts over the master-seed runs under ``root`` (every ``master-<m>`` present).

    ``reference``: a verdicts.json whose asserted checks define the asserted set (the committed run with
    measured power; the reruns skip the power alternatives, so there every assertable check still shows
    as asserted, including those the power run reports)."""
    counts: dict[str, Counter] = defaultdict(Counter)
    asserted: dict[str, bool] = {}
    used = []
    for m, path in _master_dirs(Path(root), grid):
        used.append(m)
        for row in json.loads(path.read_text())["results"]:
            counts[row["key"]][row["verdict"]] += 1
            asserted[row["key"]] = asserted.get(row["key"], False) or bool(row["asserted"])
    if reference is not None:
        ref = {r["key"]: bool(r["asserted"]) for r in json.loads(Path(reference).read_text())["results"]}
        asserted = {k: ref.get(k, False) for k in asserted}
    checks = {}
    for key in sorted(counts):
        c = counts[key]
        runs = sum(c.values())
        entry = {"verdicts": dict(c), "runs": runs, "asserted": asserted[key]}
        if asserted[key]:
            passes = c.get("PASS", 0)
            entry.update(passes=passes, false_alarm_upper_95=clopper_pearson_upper(runs - passes, runs),
                         meets_bar=passes == runs and runs >= required)
        checks[key] = entry
    failing = [k for k, e in checks.items() if e["asserted"] and not e["meets_bar"]]
    return {"grid": grid, "master_seeds": used, "bar": f"every run PASSes, over >= {required} master seeds "
            f"(false-alarm rate < 5 % at 95 %)", "asserted_checks": sum(e["asserted"] for e in checks.values()),
            "below_bar": failing, "checks": checks}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m verify.rates.false_alarms", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", help="the --out directory of the master-seed runs")
    ap.add_argument("--grid", default="quick", choices=("quick", "full"))
    ap.add_argument("--required", type=int, default=REQUIRED_RUNS, help="runs needed per check (default 59)")
    ap.add_argument("--reference", help="verdicts.json whose asserted checks are tallied as asserted (the committed "
                                        "run with measured power)")
    ap.add_argument("--write", help="write the tally as JSON here")
    args = ap.parse_args(argv)
    report = tally(args.root, args.grid, args.required, args.reference)
    if args.reference:
        report["reference"] = args.reference
    if not report["master_seeds"]:
        print(f"error: no {args.root}/{args.grid}/master-*/verdicts.json found", file=sys.stderr)
        return 2
    n = len(report["master_seeds"])
    print(f"{n} master seeds: {report['master_seeds'][0]}..{report['master_seeds'][-1]}")
    for key, e in report["checks"].items():
        if e["asserted"]:
            print(f"  {key:50s} PASS {e['passes']:3d}/{e['runs']:3d}  false-alarm rate <= "
                  f"{e['false_alarm_upper_95']:.3f} (95 %)  {e['verdicts']}")
    print(f"below the bar ({report['bar']}): {report['below_bar'] or 'none'}")
    if args.write:
        Path(args.write).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.write}")
    return 1 if report["below_bar"] else 0


if __name__ == "__main__":
    sys.exit(main())
