"""verify.oracle: correct candidates pass, every planted deviation fails at the step it first acts,
nothing passes on NaN, a missing state key or an empty comparison, and failures are explained."""

from __future__ import annotations

import json
import math

import pytest
import torch

import algorithms
from tests.verify.oracle_candidates import (
    AdamWCrashes,
    AdamWFlatMoments,
    AdamWrongBiasCorrection,
    AdamWTurnsNaN,
    MiniGaLoreAdamW,
    registered,
)
from verify.oracle import OracleInputError, assert_matches, compare
from verify.oracle.gradients import GradientStream
from verify.oracle.problem import DEFAULT_SHAPES, initial_values

MOMENTS = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}


def no_nan_json(text):
    """json.loads that refuses the non-standard NaN/Infinity tokens."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(text, parse_constant=refuse)


# ----------------------------------------------------------------------------- correct candidates pass
@pytest.mark.parametrize("gradients", ["lowrank", "loss", "random"])
def test_torch_adamw_passes_in_float32(gradients):
    rep = compare("adam", torch.optim.AdamW, kwargs=dict(lr=1e-2), candidate_kwargs=dict(foreach=False),
                  gradients=gradients, state_map=MOMENTS)
    assert rep.passed, rep.summary()
    assert 0 < max(rep.param_err) < 1e-5  # float32 rounding is visible but small


def test_readme_example_passes_as_written():
    """README: verify oracle --reference adam --candidate torch.optim:AdamW --kwargs '{"lr": 1e-3}'
    --candidate-kwargs '{"foreach": false}' --dtype float32 (reference adam: weight decay 0 by default,
    AdamW 0.01; the oracle sets 0.1 on both and says so)."""
    rep = compare("adam", "torch.optim:AdamW", kwargs={"lr": 1e-3}, candidate_kwargs={"foreach": False}, dtype=torch.float32)
    assert rep.passed, rep.summary()
    assert any(s.startswith("weight_decay=0.1 on both sides") for s in rep.settings)


def test_float64_candidate_is_held_to_round_off():
    rep = compare("adam", torch.optim.AdamW, kwargs=dict(lr=1e-2), dtype=torch.float64,
                  candidate_kwargs=dict(foreach=False), state_map=MOMENTS)
    assert rep.rtol == 1e-10 and rep.passed and max(rep.param_err) < 1e-14


def test_strict_runs_float64_at_1e_10():
    rep = compare("adam", torch.optim.AdamW, strict=True)
    assert (rep.dtype, rep.rtol, rep.passed) == ("float64", 1e-10, True)
    with pytest.raises(OracleInputError, match="strict"):
        compare("adam", torch.optim.AdamW, strict=True, dtype=torch.float32)
    with pytest.raises(OracleInputError, match="strict"):
        compare("adam", torch.optim.AdamW, strict=True, rtol=1e-3)


def test_factory_candidate_with_groups():
    def factory(params, lr=1e-3, **kwargs):
        return torch.optim.AdamW([{"params": params[:3]}, {"params": params[3:], "lr": lr}], lr=lr, **kwargs)

    assert compare("adam", factory, candidate_kwargs={"foreach": False}).passed


# ----------------------------------------------------------------------------- never a false PASS
def test_nan_candidate_fails_at_the_step_it_turns_nan():
    rep = compare("adam", AdamWTurnsNaN, candidate_kwargs={"foreach": False, "nan_from": 5})
    assert not rep.passed and rep.first_failure == 5
    f = rep.failure
    assert (f.quantity, f.param_index, f.param_name, f.shape, f.error) == ("params", 0, "tall", (24, 16), None)
    assert "384 NaN" in f.reason
    data = no_nan_json(rep.to_json())  # strict JSON
    assert data["passed"] is False and data["first_failure"]["step"] == 5
    assert data["series"]["params"]["tall"][4] is None and data["series"]["params"]["tall"][3] < 1e-5
    assert rep.param_err[4] == math.inf
    assert "FAIL at step 5" in rep.summary()


def test_unknown_state_key_is_an_error_naming_the_keys_of_both_sides():
    with pytest.raises(OracleInputError, match=r"reference keys: \['step', 'sum_sq'\], candidate keys: \['step', 'sum'\]"):
        compare("adagrad_coordinate", torch.optim.Adagrad, state_map={"sum": "sum"})
    with pytest.raises(OracleInputError, match=r"no parameter has 'foo'.*reference keys: \['step', 'sum_sq'\]"):
        compare("adagrad_coordinate", torch.optim.Adagrad, state_map={"foo": "bar"})


def test_state_shape_mismatch_fails_with_both_shapes():
    rep = compare("adam", AdamWFlatMoments, candidate_kwargs={"foreach": False}, state_map={"exp_avg": "exp_avg"})
    assert rep.first_failure == 1 and rep.failure.quantity == "state[exp_avg]"
    assert "candidate 'exp_avg' (384,), reference 'exp_avg' (24, 16)" in rep.failure.reason


def test_empty_or_zero_size_shapes_are_refused():
    for shapes in ([], [(0, 5)], [(3, 0)]):
        with pytest.raises(OracleInputError, match="shapes"):
            compare("adam", torch.optim.AdamW, shapes=shapes)


def test_a_crashing_candidate_fails_at_that_step():
    rep = compare("adam", AdamWCrashes, candidate_kwargs={"crash_at": 3})
    assert rep.first_failure == 3 and rep.failure.quantity == "step()" and "size mismatch" in rep.failure.reason
    no_nan_json(rep.to_json())


def test_input_errors_are_one_line_and_list_the_valid_values():
    cases = [
        (dict(reference="adamx"), "registered: adagrad_coordinate"),
        (dict(steps=0), "steps"),
        (dict(gradients="gauss"), "valid: lowrank, loss, random"),
        (dict(dtype=torch.int32), "valid: float64"),
        (dict(candidate_groups='[{"params": "matrix"}]'), "valid: matrices"),
        (dict(candidate_groups='[{"params": "matrices"}]'), "in no group"),
        (dict(candidate_groups="[{"), "invalid JSON"),
        (dict(candidate_kwargs={"betas": (2.0, 0.9)}), "candidate: .*raised ValueError"),
    ]
    for options, message in cases:
        reference = options.pop("reference", "adam")
        with pytest.raises(OracleInputError, match=message) as info:
            compare(reference, torch.optim.AdamW, **options)
        assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- planted deviations
def _first_width_change(name, key, **kwargs):
    """1-based step at which the reference's basis width first changes (its rank adapts)."""
    ps = [x.clone().requires_grad_() for x in initial_values(DEFAULT_SHAPES, 0, torch.float64)]
    opt = algorithms.make(name, ps, weight_decay=0.1, **kwargs)
    stream = GradientStream("lowrank", DEFAULT_SHAPES, 0)
    widths = []
    for t in range(1, 402):
        for p, g in zip(ps, stream.gradients(t)):
            p.grad = g
        opt.step()
        widths.append(opt.state[ps[0]][key].shape[1])
        if widths[-1] != widths[0]:
            return t, widths[0]
    raise AssertionError("the default stream never changed the rank")


def _first_limiter_step(**kwargs):
    """1-based step at which Fira's norm-growth limiter first binds (stored ‖S_t‖ = γ(‖S_{t-1}‖ + ε))."""
    ps = [x.clone().requires_grad_() for x in initial_values(DEFAULT_SHAPES, 0, torch.float64)]
    opt = algorithms.make("fira_adamw", ps, weight_decay=0.1, **kwargs)
    stream = GradientStream("lowrank", DEFAULT_SHAPES, 0)
    previous = None
    for t in range(1, 60):
        for p, g in zip(ps, stream.gradients(t)):
            p.grad = g
        opt.step()
        norms = [float(opt.state[p]["residual_norm"]) for p in ps[:3]]
        if previous and any(math.isclose(n, 1.01 * (q + 1e-8), rel_tol=1e-9) for n, q in zip(norms, previous)):
            return t
        previous = norms
    raise AssertionError("the limiter never bound")


@pytest.mark.parametrize("planted,strict,expected", [
    (dict(decoupled_weight_decay=False), False, 1),  # coupled (L2) decay
    (dict(eps_placement="hf"), True, 1),  # ε added to the uncorrected √v
    (dict(weight_decay_timing="after"), True, 1),  # decay after the update
], ids=["coupled-decay", "eps-placement", "decay-order"])
def test_planted_adam_deviation_found_with_defaults(planted, strict, expected):
    rep = compare("adam", registered("adam", **planted), strict=strict)
    assert rep.first_failure == expected, rep.summary()


def test_conventions_below_float32_round_off_need_strict():
    """ε placement and decay order change a float32 step by less than its round-off at step 1."""
    for planted in (dict(eps_placement="hf"), dict(weight_decay_timing="after")):
        rep = compare("adam", registered("adam", **planted), steps=5)
        assert rep.passed and max(rep.param_err) < 1e-5


def test_planted_bias_correction_bug_fails_at_step_1():
    rep = compare("adam", AdamWrongBiasCorrection, kwargs=dict(lr=1e-2), steps=30)
    assert rep.first_failure == 1


def test_refresh_one_step_early_and_never_found_at_the_refresh():
    """Default steps = 2·T + 1 = 401: a projector refreshing at step T (one early) fails at 200, one
    that never refreshes at 201; the authors' schedule passes."""
    official = dict(variant="official")
    ok = compare("galore_adamw", MiniGaLoreAdamW, reference_kwargs=official, state_map=MOMENTS)
    assert ok.passed and ok.steps == 401, ok.summary()
    early = compare("galore_adamw", MiniGaLoreAdamW, reference_kwargs=official, candidate_kwargs={"refresh_offset": 1})
    never = compare("galore_adamw", MiniGaLoreAdamW, reference_kwargs=official, candidate_kwargs={"never_refresh": True})
    assert (early.first_failure, never.first_failure) == (200, 201)


def test_rank_that_never_adapts_found_at_the_first_rank_change():
    step, first_rank = _first_width_change("adarankgrad", "basis", max_rank=8)
    assert step == 201  # the default stream's energy rank moves between refreshes
    rep = compare("adarankgrad", registered("adarankgrad", min_rank=first_rank, max_rank=first_rank))
    assert rep.steps == 401 and rep.first_failure == step, rep.summary()


def test_missing_limiter_found_where_the_limiter_first_binds():
    step = _first_limiter_step(rank=4)
    rep = compare("fira_adamw", registered("fira_adamw", limiter_gamma=None), kwargs={"rank": 4}, strict=True)
    assert rep.first_failure == step, rep.summary()


def test_missing_clip_is_found():
    rep = compare("mars_adamw", registered("mars_adamw", clip="none"), kwargs={"variant": "official"})
    assert not rep.passed and rep.first_failure <= 2


# ----------------------------------------------------------------------------- the report explains
def test_first_step_failure_prints_the_defaults_diff():
    rep = compare("adam", torch.optim.AdamW, reference_kwargs={"weight_decay": 0.0})
    assert rep.first_failure == 1 and rep.failure.error > rep.rtol
    text = rep.summary()
    assert "weight_decay: reference 0.0, candidate 0.01" in text
    diff = no_nan_json(rep.to_json())["hyperparameters"]["differences"]
    assert diff == [{"key": "weight_decay", "candidate_key": "weight_decay", "reference": 0.0, "candidate": 0.01,
                     "params": rep.param_names}]


def test_variant_hint_and_aliases():
    rep = compare("galore_adamw", MiniGaLoreAdamW, kwargs={"rank": 4})
    assert rep.first_failure == 1
    text = rep.summary()
    assert "variant='official' reproduces the authors' code" in text
    assert "eps: reference 1e-08, candidate 1e-06" in text and "lr: reference 0.01, candidate 0.001" in text
    assert "scale: reference 0.25, candidate 1.0" in text


def test_report_series_and_failure_fields_are_complete():
    rep = compare("adam", torch.optim.AdamW, kwargs={"lr": 1e-3}, state_map=MOMENTS, steps=7)
    data = no_nan_json(rep.to_json())
    assert data["compared_steps"] == list(range(1, 8))
    assert set(data["series"]) == {"params", "state[exp_avg]", "state[exp_avg_sq]"}
    assert all(len(s) == 7 for per in data["series"].values() for s in per.values())
    assert set(data["series"]["params"]) == {"tall", "wide", "square", "tensor", "vector", "scalar"}


def test_assert_matches_raises_with_the_explained_report():
    report = assert_matches("adam", torch.optim.AdamW, kwargs={"lr": 1e-3}, steps=5)
    assert report.passed
    with pytest.raises(AssertionError, match="(?s)FAIL at step 1.*weight_decay: reference 0.0, candidate 0.01"):
        assert_matches("adam", torch.optim.AdamW, reference_kwargs={"weight_decay": 0.0}, steps=5)


# ----------------------------------------------------------------------------- defaults exercise every path
@pytest.mark.filterwarnings("ignore::UserWarning")  # adam_sn's subset fallback on the prime-sized vector
def test_every_registered_reference_runs_on_the_default_shapes():
    """With its rank fitted (the class names ``rank``/``max_rank``, so the candidate gets it too)."""
    for name, cls in sorted(algorithms.REGISTRY.items()):
        rep = compare(name, cls, dtype=torch.float64, steps=3)
        assert rep.passed, rep.summary()


def test_fitted_rank_and_steps_are_listed():
    rep = compare("galore_adamw", MiniGaLoreAdamW, steps=2)
    assert any(s.startswith("rank=4 for the reference") for s in rep.settings)
    assert compare("galore_adamw", MiniGaLoreAdamW, reference_kwargs={"variant": "official"}).steps == 401
    assert compare("adam", torch.optim.AdamW).steps == 50


def test_weight_decay_is_only_filled_where_both_sides_take_it():
    class NoDecay(torch.optim.SGD):
        def __init__(self, params, lr=1e-3):
            super().__init__(params, lr=lr)

    rep = compare("sgd", NoDecay, steps=3)
    assert rep.passed and not any("weight_decay" in s for s in rep.settings)


def test_default_stream_moves_ranks_binds_limiters_and_clips():
    stream = GradientStream("lowrank", DEFAULT_SHAPES, 0)
    norms = torch.tensor([[float(g.norm()) for g in stream.gradients(t)] for t in range(1, 50)])
    assert (norms > 1).any() and (norms < 1).any()  # MARS's clip at 1 binds on some steps, not on others
    growth = norms[1:, 0] / norms[:-1, 0]
    assert (growth > 1.01).any() and (growth < 1).any()
    assert _first_limiter_step(rank=4) <= 5
    assert _first_width_change("adarankgrad", "basis", max_rank=8)[0] == 201


def test_loss_stream_binds_fira_limiter():
    ps = [x.clone().requires_grad_() for x in initial_values(DEFAULT_SHAPES, 0, torch.float64)]
    opt = algorithms.make("fira_adamw", ps, rank=4)
    stream = GradientStream("loss", DEFAULT_SHAPES, 0)
    ratios = []
    for t in range(1, 40):
        data = stream.loss_data(t)
        for p, g in zip(ps, stream.loss_gradients(data, ps, torch.float64)):
            p.grad = g
        before = float(opt.state[ps[0]]["residual_norm"]) if opt.state[ps[0]] else None
        opt.step()
        if before is not None:
            ratios.append(float(opt.state[ps[0]]["residual_norm"]) / (before + 1e-8))
    assert any(math.isclose(r, 1.01, rel_tol=1e-9) for r in ratios) and min(ratios) < 1


def test_gradient_streams_are_deterministic_and_rank_deficient():
    a = GradientStream("lowrank", DEFAULT_SHAPES, 3).gradients(1)
    b = GradientStream("lowrank", DEFAULT_SHAPES, 3).gradients(1)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    s = torch.linalg.svdvals(a[0])
    energy = (s**2).cumsum(0) / (s**2).sum()
    assert int((energy < 0.96).sum()) + 1 == 6 and s[-1] > 0  # energy rank 6 of 16, no exact zeros
