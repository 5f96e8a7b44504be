"""verify/rank: the theory pieces against explicit computations, and every check passing on the
real code and failing on a planted bug (a mutant)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import algorithms.projection as projection
from synthetic.noise import AdditiveNoise
from synthetic.problems import MatrixQuadratic
from verify import rank as rc
from verify.cli import main

RESULTS = Path(__file__).resolve().parents[2] / "results" / "rank"


# ----------------------------------------------------------------------------- theory pieces
def test_vec_convention_matches_the_hessian():
    problem = MatrixQuadratic.random(5, 7, 3, seed=1)
    W = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    S = problem.hessian_matrix()
    torch.testing.assert_close(S @ rc.vec(W), rc.vec(problem.hessian_apply(W.unsqueeze(0))[0]), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(rc.unvec(rc.vec(W), 5, 7), W, rtol=0, atol=0)


def test_closed_form_equals_the_recursion():
    problem = MatrixQuadratic.random(4, 6, 2, seed=2)
    theory = rc.AbcTheory.of(problem)
    S = problem.hessian_matrix()
    g = rc.vec(problem.grad(problem.x0.unsqueeze(0))[0])
    lr = theory.lr
    for t in range(0, 30):
        scale = (1 - lr * theory.lambda1) ** t
        cf = rc.vec(theory.closed_form(torch.tensor([t]))[0]) * scale
        torch.testing.assert_close(cf, g, rtol=1e-10, atol=1e-12 * float(g.abs().max()))
        g = g - lr * (S @ g)


def test_theory_of_a_kronecker_instance():
    """N = 1: S = C ⊗ B, λ1 = λmin(B)λmin(C) is simple and its eigenvector decomposable, so sr∞ = 1."""
    problem = rc.gapped_problem(6, 9, 1, gap=2.0, top=4.0)
    th = rc.AbcTheory.of(problem)
    assert th.lambda1 == pytest.approx(1.0, rel=1e-12) and th.lambda2 == pytest.approx(2.0, rel=1e-12)
    assert th.rho == pytest.approx((1 - th.lr * 2) / (1 - th.lr * 1), rel=1e-12)
    assert th.lambda1_multiplicity == 1 and th.v1_sigma_ratio < 1e-12
    assert th.sr_limit == pytest.approx(1.0, abs=1e-12)


def test_non_decomposable_limit_for_n_greater_than_one():
    th = rc.AbcTheory.of(MatrixQuadratic.random(6, 9, 4, eig_range=(1.0, 4.0), seed=0))
    assert th.lambda1_multiplicity == 1 and th.v1_sigma_ratio > 1e-3 and th.sr_limit > 1 + 1e-4


def test_roundoff_tolerance_shape():
    norms = torch.tensor([1.0, 0.1, 1e-6], dtype=torch.float64)
    tol = rc.roundoff_tolerance(norms, 10.0)
    assert tol[0] < tol[1] < tol[2]
    assert float(tol[0]) == pytest.approx(4 * 2 * torch.finfo(torch.float64).eps + 1e-13)


def test_recording_oracle_sees_what_the_optimizer_sees():
    problem = MatrixQuadratic.random(4, 6, 1, eig_range=(1.0, 4.0), seed=0)
    trace = rc.run_gd(problem, 5, noise=AdditiveNoise(0.1))
    assert trace.clean.shape == (5, 4, 6)
    assert not torch.equal(trace.clean, trace.observed)
    # plain GD: W_1 = W_0 − η g_1, so the clean gradient at W_1 is G(W_0 − η g_obs_1)
    W1 = problem.x0 - trace.observed[0] / problem.L
    torch.testing.assert_close(trace.clean[1], problem.grad(W1.unsqueeze(0))[0], rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- checks: real code passes
@pytest.fixture(scope="module")
def real_results():
    return {name: spec.fn(True) for name, spec in rc.CHECKS.items()}


@pytest.mark.parametrize("name", list(rc.CHECKS))
def test_check_passes_on_real_code(real_results, name):
    outcome = real_results[name]
    passed, detail = outcome.outcome == "PASS", outcome.reason
    payload = outcome.data
    assert passed, detail
    assert payload


def test_lemma33_payload_is_informative(real_results):
    p = real_results["lemma33"].data
    assert p["bound_tested_steps"] >= rc.MIN_TESTED_STEPS and p["rate_fit_steps"] >= 10
    assert p["observed_late_rate"] <= p["theory"]["rho_squared"]


def test_rank_one_limit_payload(real_results):
    p = real_results["rank_one_limit"].data
    assert p["cases"]["N=1"]["limit_is_one"] and p["cases"]["N=1"]["v1_decomposable"]
    for N in (4, 16):
        case = p["cases"][f"N={N}"]
        assert not case["limit_is_one"] and case["predicted_limit_sr_unvec_v1"] > 1


# ----------------------------------------------------------------------------- mutants
def test_lemma33_fails_with_momentum():
    problem = rc.gapped_problem(16, 24, 1, gap=2.0, top=4.0)
    outcome = rc.check_lemma33(True, hyper={"lr": 1.0 / problem.L, "momentum": 0.5})
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_lemma33_fails_with_an_optimistic_rate():
    """Planted bug in the prediction: λ2 taken as the last excited eigenvalue (an indexing slip) instead of
    the second smallest, which predicts a far faster decay than the dynamics allow."""

    def wrong_gap(problem):
        th = rc.AbcTheory.of(problem)
        th.lambda2 = float(th.eigenvalues[-1])
        th.rho = (1 - th.lr * th.lambda2) / (1 - th.lr * th.lambda1)
        return th

    outcome = rc.check_lemma33(True, theory_fn=wrong_gap)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_rank_one_limit_fails_with_row_major_unvec():
    outcome = rc.check_rank_one_limit(True, unvec_fn=lambda v, m, n: v.reshape(m, n))
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_rank_one_limit_fails_with_a_wrong_step_size():
    def half_step(problem):
        return {"lr": 0.5 / problem.L}

    problem = MatrixQuadratic.random(16, 24, 1, eig_range=(1.0, 4.0), seed=0)
    outcome = rc.check_rank_one_limit(True, hyper=half_step(problem))
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_noise_check_fails_without_noise():
    outcome = rc.check_noise_effect(True, noise_factory=lambda sigma: AdditiveNoise(0.0))
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_noise_check_fails_when_measuring_the_clean_gradient():
    outcome = rc.check_noise_effect(True, observed_from="clean")
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_adarankgrad_check_fails_on_a_shifted_rank_rule(monkeypatch):
    real = projection.energy_rank

    def one_more(S, total, threshold, *, min_rank, max_rank):
        return (real(S, total, threshold, min_rank=min_rank, max_rank=max_rank) + 1).clamp(max=min(max_rank, S.shape[-1]))

    import algorithms.adarankgrad as arg

    monkeypatch.setattr(arg, "energy_rank", one_more)
    outcome = rc.check_adarankgrad_trace(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


def test_adarankgrad_check_fails_on_a_different_threshold():
    outcome = rc.check_adarankgrad_trace(True, hyper={"rank_threshold": 0.9})
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed, detail


# ----------------------------------------------------------------------------- results, figures, CLI
def test_committed_results_and_figures(tmp_path):
    files = sorted(p.name for p in RESULTS.glob("*.json"))
    assert files == sorted(f"{name}.json" for name in rc.CHECKS)
    for path in RESULTS.glob("*.json"):
        record = json.loads(path.read_text())
        assert record["verdict"] == "PASS" and record["asserted"], record["reason"]
    written = rc.make_figures(RESULTS, tmp_path)
    assert sorted(p.name for p in written) == ["rank_adarankgrad.png", "rank_lemma33.png", "rank_limit.png",
                                               "rank_noise.png"]
    assert all(p.stat().st_size > 10_000 for p in written)


def test_verify_rank_cli(capsys, tmp_path):
    assert main(["rank", "--only", "nope"]) == 2
    assert main(["rank", "--figures", str(RESULTS), "--out", str(tmp_path)]) == 0
    assert "rank_noise.png" in capsys.readouterr().out
