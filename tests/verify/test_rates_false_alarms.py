"""verify/rates/false_alarms.py: the tally over master-seed directories, its bar and its bound."""

from __future__ import annotations

import json

import pytest

from verify.rates.false_alarms import clopper_pearson_upper, main, tally


def _write(root, m, verdicts):
    d = root / "quick" / f"master-{m}"
    d.mkdir(parents=True)
    rows = [{"key": k, "verdict": v, "asserted": v in ("PASS", "FAIL", "INCONCLUSIVE")} for k, v in verdicts.items()]
    (d / "verdicts.json").write_text(json.dumps({"results": rows}))


def test_clopper_pearson_bound_matches_the_closed_form():
    # no failure in n runs: the upper bound is 1 − 0.05^(1/n); 59 runs are the first below 5 %
    assert clopper_pearson_upper(0, 59) == pytest.approx(1 - 0.05 ** (1 / 59))
    assert clopper_pearson_upper(0, 59) < 0.05 < clopper_pearson_upper(0, 58)
    assert clopper_pearson_upper(0, 20) == pytest.approx(0.1391, abs=1e-4)
    assert clopper_pearson_upper(3, 3) == 1.0
    with pytest.raises(ValueError):
        clopper_pearson_upper(4, 3)


def test_tally_requires_every_run_to_pass_over_enough_seeds(tmp_path):
    for m in range(1, 60):
        _write(tmp_path, m, {"good": "PASS",
                             "one_miss": "PASS" if m != 7 else "INCONCLUSIVE",
                             "claim": "CONSISTENT"})
    report = tally(tmp_path)
    assert report["master_seeds"] == list(range(1, 60))
    good, miss = report["checks"]["good"], report["checks"]["one_miss"]
    assert good["passes"] == 59 and good["meets_bar"] and good["false_alarm_upper_95"] < 0.05
    assert miss["passes"] == 58 and not miss["meets_bar"] and miss["false_alarm_upper_95"] > 0.05
    assert report["below_bar"] == ["one_miss"]
    assert not report["checks"]["claim"]["asserted"]
    assert main([str(tmp_path), "--write", str(tmp_path / "fa.json")]) == 1
    assert json.loads((tmp_path / "fa.json").read_text())["below_bar"] == ["one_miss"]


def test_too_few_seeds_do_not_meet_the_bar(tmp_path):
    for m in range(1, 21):
        _write(tmp_path, m, {"good": "PASS"})
    assert tally(tmp_path)["below_bar"] == ["good"]
    assert tally(tmp_path, required=20)["below_bar"] == []


def test_no_runs_is_an_error(tmp_path):
    assert main([str(tmp_path)]) == 2


def test_the_reference_run_decides_what_is_asserted(tmp_path):
    for m in range(1, 60):
        _write(tmp_path, m, {"powered": "PASS", "unpowered": "INCONCLUSIVE"})
    ref = tmp_path / "reference.json"
    ref.write_text(json.dumps({"results": [{"key": "powered", "asserted": True}, {"key": "unpowered", "asserted": False}]}))
    report = tally(tmp_path, reference=ref)
    assert report["below_bar"] == [] and not report["checks"]["unpowered"]["asserted"]
    assert tally(tmp_path)["below_bar"] == ["unpowered"]
