"""verify/rates/false_alarms.py: the tally over master-seed directories, and its bar."""

from __future__ import annotations

import json

from verify.rates.false_alarms import main, tally


def _write(root, m, verdicts):
    d = root / "quick" / f"master-{m}"
    d.mkdir(parents=True)
    rows = [{"key": k, "verdict": v, "asserted": v in ("PASS", "FAIL")} for k, v in verdicts.items()]
    (d / "verdicts.json").write_text(json.dumps({"results": rows}))


def test_tally_counts_and_flags_a_check_below_the_bar(tmp_path):
    for m in range(1, 21):
        _write(tmp_path, m, {"good": "PASS" if m != 7 else "FAIL",  # 19/20: meets the bar
                             "flaky": "PASS" if m % 5 else "FAIL",  # 16/20: below it
                             "claim": "CONSISTENT"})
    report = tally(tmp_path)
    assert report["master_seeds"] == list(range(1, 21))
    assert report["checks"]["good"]["passes"] == 19 and report["checks"]["good"]["meets_bar"]
    assert report["checks"]["flaky"]["passes"] == 16 and not report["checks"]["flaky"]["meets_bar"]
    assert report["below_bar"] == ["flaky"]
    assert not report["checks"]["claim"]["asserted"]
    assert main([str(tmp_path), "--write", str(tmp_path / "fa.json")]) == 1
    assert json.loads((tmp_path / "fa.json").read_text())["below_bar"] == ["flaky"]


def test_no_runs_is_an_error(tmp_path):
    assert main([str(tmp_path)]) == 2
