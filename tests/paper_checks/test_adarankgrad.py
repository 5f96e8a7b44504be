"""paper_checks/adarankgrad.py: the paper's claims are second-hand ([A], [S]) and reported; the toolkit's
derivations ([D]) are asserted; planted bad results never pass."""

from __future__ import annotations

from paper_checks import adarankgrad

from .planted import assert_not_good, claim_result, paper_results


def test_committed_results():
    got = paper_results(adarankgrad.PAPER)
    assert not [k for k, r in got.items() if r["verdict"] == "ERROR"]
    # the lemma as summarised (rank → 1 for any N) disagrees with the N = 4, 16 instances; the caveat holds
    assert got["adarankgrad.rank.lemma-rank-one"]["verdict"] == "INCONSISTENT"
    for key in ("adarankgrad.rank.limit-caveat", "adarankgrad.rank.noise-effect", "adarankgrad.rank.rule-reproduced",
                "adarankgrad.rank.noise-keeps-rank-high"):
        assert got[key]["verdict"] == "PASS" and got[key]["asserted"], got[key]
    assert got["adarankgrad.rank.adaptive-rank-decreases"]["verdict"] == "CONSISTENT"
    assert all(not r["asserted"] for r in got.values() if r["kind"] == "rate")


def test_a_limit_that_is_one_everywhere_makes_the_lemma_consistent_and_the_caveat_fail(planted):
    def all_one(d):
        for case in d["cases"].values():
            case.update(sr_at_1e7_closed_form=1.0, predicted_limit_sr_unvec_v1=1.0, limit_is_one=True)
    planted.edit("rank/rank_one_limit.json", all_one)
    assert claim_result("adarankgrad.rank.lemma-rank-one")["verdict"] == "CONSISTENT"
    out = claim_result("adarankgrad.rank.limit-caveat")
    assert out["verdict"] == "FAIL" and "decomposable" in out["reason"]


def test_a_rule_that_is_not_reproduced_fails(planted):
    planted.edit("rank/adarankgrad_trace.json", lambda d: d["runs"]["clean"].update(agree=False))
    assert claim_result("adarankgrad.rank.rule-reproduced")["verdict"] == "FAIL"


def test_a_rank_that_does_not_fall_is_inconsistent(planted):
    planted.edit("rank/adarankgrad_trace.json", lambda d: d["runs"]["clean"].update(final_rank=28, min_rank=28))
    assert_not_good(claim_result("adarankgrad.rank.adaptive-rank-decreases"), asserted=False)


def test_noise_that_does_not_raise_the_rank_fails(planted):
    planted.edit("rank/noise_effect.json", lambda d: d.update(observed_final=2.4))
    assert claim_result("adarankgrad.rank.noise-effect")["verdict"] == "FAIL"

    def flat(d):
        for run in d["runs"].values():
            run["mean_rank"] = 1.0
    planted.edit("rank/adarankgrad_trace.json", flat)
    assert claim_result("adarankgrad.rank.noise-keeps-rank-high")["verdict"] == "FAIL"


def test_a_state_unlike_galore_at_the_maximal_rank_is_inconsistent(planted):
    def change(d):
        row = next(r for r in d["models"]["llama-60m"] if r["algorithm"] == "adarankgrad")
        row["projectors"] += 1
    planted.edit("memory/model_totals.json", change)
    assert claim_result("adarankgrad.memory.below-galore")["verdict"] == "INCONSISTENT"


def test_missing_rank_files_are_errors(planted):
    planted.remove("rank/rank_one_limit.json")
    planted.remove("rank/adarankgrad_trace.json")
    for key in ("adarankgrad.rank.lemma-rank-one", "adarankgrad.rank.limit-caveat",
                "adarankgrad.rank.rule-reproduced"):
        assert claim_result(key)["verdict"] == "ERROR"
