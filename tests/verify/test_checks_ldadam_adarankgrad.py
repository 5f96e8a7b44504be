"""verify/methods/ldadam_adarankgrad.py: every check passes on the real code and fails on a planted bug."""

from __future__ import annotations

import pytest

import algorithms.adarankgrad as A
import algorithms.ldadam as L
from verify.methods import ldadam_adarankgrad as C


def test_every_check_passes_on_the_real_code():
    galore = "galore_adamw" in __import__("algorithms").REGISTRY
    for fn in (C.ldadam_rank_one_vs_adamw, C.ldadam_full_rank_momentum, C.ldadam_vs_transcription,
               C.adarankgrad_vs_galore, C.adarankgrad_energy_rank):
        outcome = fn(True)
        passed, detail = outcome.outcome == "PASS", outcome.reason
        if fn is C.adarankgrad_vs_galore and not galore:
            assert not passed and "not registered" in detail
            continue
        assert passed, (fn.__name__, detail)


def test_rank_one_check_fails_on_wrong_eps_placement(monkeypatch):
    original = L.adam_direction
    monkeypatch.setattr(L, "adam_direction", lambda *a, **kw: original(*a, **{**kw, "eps_placement": "hf"}))
    assert C.ldadam_rank_one_error(True) > 1e-8
    assert C.ldadam_rank_one_vs_adamw(True).outcome == "FAIL"


def test_full_rank_check_fails_on_a_transposed_change_of_basis(monkeypatch):
    original = L.rotate_coordinates
    monkeypatch.setattr(L, "rotate_coordinates", lambda X, Cm, side: original(X, Cm.mT, side))
    assert C.ldadam_full_rank_momentum(True).outcome == "FAIL"


def test_transcription_check_fails_on_the_old_fourth_power_bug(monkeypatch):
    """Commits of the LDAdam code before c9cd09a used (Q∘Q)∘(Q∘Q) in the second-moment transfer."""
    original = L.transfer_second_moment
    monkeypatch.setattr(L, "transfer_second_moment",
                        lambda v, m, mm, Cm, k, **kw: original(v, m, mm, Cm * Cm, k, **kw))
    assert C.ldadam_vs_transcription(True).outcome == "FAIL"


def test_transcription_check_fails_on_error_feedback_without_the_momentum_term(monkeypatch):
    original = L.error_feedback_residual
    monkeypatch.setattr(L, "error_feedback_residual",
                        lambda a, g, b, s, *, beta1, lost_momentum: original(a, g, b, s, beta1=beta1, lost_momentum=None))
    assert C.ldadam_vs_transcription(True).outcome == "FAIL"


def test_galore_check_fails_on_a_shifted_refresh_schedule(monkeypatch):
    pytest.importorskip("algorithms.galore_adamw")
    original = A.refresh_due
    monkeypatch.setattr(A, "refresh_due", lambda G, basis, side, *, tolerance, subspace_steps, cap: original(
        G, basis, side, tolerance=tolerance, subspace_steps=subspace_steps - 1, cap=cap))
    assert C.adarankgrad_vs_galore(True).outcome == "FAIL"


def test_energy_rank_check_fails_on_a_misread_threshold(monkeypatch):
    """Reading the kept-energy threshold as the residual fraction (the zij page's η_th) picks other ranks."""
    monkeypatch.setattr(A, "kept_energy_fraction", lambda rule, t: 1.0 - t)
    outcome = C.adarankgrad_energy_rank(True)
    passed, detail = outcome.outcome == "PASS", outcome.reason
    assert not passed and "mismatch" in detail
