"""The batched many-seed runner: bit-identity alone vs in a batch (every registered optimizer), the loop
fallback, batched = loop, traces, JSON, and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import algorithms
from algorithms import ReferenceOptimizer
from synthetic import (
    AdditiveNoise,
    MatrixQuadratic,
    Oracle,
    RobustRegression,
    SeparableLogSum,
    log_steps,
    run,
)
from synthetic import runner as runner_module
from synthetic.metrics import distance_to, state_value

from ..helpers import max_rel_err
from ..optim_db import OPTIM_DB

STEPS = 7


def registry_cases():
    """Every registered optimizer with every input of its OptimizerInfo (defaults when it has none)."""
    cases = []
    for name in sorted(algorithms.REGISTRY):
        info = OPTIM_DB.get(name)
        inputs = [(inp.desc, inp.kwargs) for inp in info.inputs] if info else [("defaults", {})]
        cases += [pytest.param(name, kwargs, id=f"{name}[{desc}]") for desc, kwargs in inputs]
    return cases


@pytest.fixture(scope="module")
def matrix_problem():
    return MatrixQuadratic.random(8, 6, N=2, seed=11)


def _run(name, kwargs, problem, seeds, **kw):
    kw.setdefault("noise", AdditiveNoise(0.1))
    kw.setdefault("metrics", ("f", "grad_norm_sq"))
    return run(name, kwargs, problem, steps=STEPS, seeds=seeds, record_steps=(0, 1, 3, STEPS), **kw)


def _same_seed_results(a, ia, b, ib):
    assert torch.equal(a.final_x[ia], b.final_x[ib])
    for key in a.trace:
        np.testing.assert_array_equal(a.trace[key][:, ia], b.trace[key][:, ib], err_msg=key)


@pytest.mark.parametrize("name, kwargs", registry_cases())
def test_a_seed_alone_equals_the_seed_in_batches_of_any_size(name, kwargs, matrix_problem):
    seeds = [3, 14, 15, 92, 65]
    try:
        batch = _run(name, kwargs, matrix_problem, seeds, x0_radius=0.5, metrics=("f", "grad_norm_sq", "state_norms"))
    except TypeError as exc:
        if "required" in str(exc):
            pytest.skip(f"{name} has required constructor arguments and no OptimizerInfo to supply them: {exc}")
        raise
    for index in ([4], [1, 3, 2]):  # alone, and in a batch of another size and order
        part = _run(name, kwargs, matrix_problem, [seeds[i] for i in index], x0_radius=0.5,
                    metrics=("f", "grad_norm_sq", "state_norms"))
        assert part.mode == batch.mode
        for j, i in enumerate(index):
            _same_seed_results(batch, i, part, j)


@pytest.mark.parametrize("name, kwargs", registry_cases())
def test_batched_run_equals_the_per_seed_loop(name, kwargs, matrix_problem):
    """Batched arithmetic on [S, m, n] reproduces S separate optimizers to round-off (bit-exact for
    elementwise methods); optimizers that fall back to the loop are compared with themselves."""
    try:
        auto = _run(name, kwargs, matrix_problem, 4, metrics=("f",))
    except TypeError as exc:
        if "required" in str(exc):
            pytest.skip(f"{name} has required constructor arguments and no OptimizerInfo to supply them: {exc}")
        raise
    loop = _run(name, kwargs, matrix_problem, 4, metrics=("f",), mode="loop")
    assert loop.mode == "loop"
    if name in ("sgd", "adam"):
        assert torch.equal(auto.final_x, loop.final_x)
    else:
        assert max_rel_err(auto.final_x, loop.final_x) <= 1e-10


def test_loop_fallback_for_optimizers_that_cannot_batch(matrix_problem):
    cannot = sorted(n for n, c in algorithms.REGISTRY.items() if not c.supports_batch_dims)
    if not cannot:
        pytest.skip("every registered optimizer supports batch_dims; nothing falls back")
    for name in cannot:
        kwargs = OPTIM_DB[name].inputs[0].kwargs if name in OPTIM_DB else {}
        result = _run(name, kwargs, matrix_problem, 3)
        assert result.mode == "loop" and "supports_batch_dims is False" in result.mode_reason
        with pytest.raises(ValueError, match="does not support batch_dims"):
            _run(name, kwargs, matrix_problem, 3, mode="batched")


class _NoisySGD(ReferenceOptimizer):
    """SGD on g + 0.01·N(0, 1) drawn from the optimizer's own generator (a randomized test optimizer)."""

    registry_name = "_test_noisy_sgd"

    def __init__(self, params, lr=0.1, *, seed=0, nonfinite="ignore", batch_dims=0):
        super().__init__(params, dict(lr=lr), seed=seed, nonfinite=nonfinite, batch_dims=batch_dims)

    def _init_state(self, p, group, state):
        pass

    def _update_param(self, p, grad, state, group):
        state["step"] += 1
        z = torch.randn(p.shape, generator=self.generator(p), dtype=p.dtype)
        self.save_generator(p)
        p.add_(grad + 0.01 * z, alpha=-group["lr"])


def test_randomized_optimizer_is_restarted_in_loop_mode(monkeypatch):
    monkeypatch.setitem(algorithms.REGISTRY, "_test_noisy_sgd", _NoisySGD)
    p = SeparableLogSum(6)
    batch = run("_test_noisy_sgd", {"lr": 0.1}, p, steps=5, seeds=[1, 2, 3])
    assert batch.mode == "loop" and "drew random numbers" in batch.mode_reason
    alone = run("_test_noisy_sgd", {"lr": 0.1}, p, steps=5, seeds=[2])
    assert torch.equal(batch.final_x[1], alone.final_x[0])
    assert not torch.equal(batch.final_x[0], batch.final_x[1])  # per-seed optimizer seeds differ
    with pytest.warns(runner_module.BatchInvarianceWarning):
        forced = run("_test_noisy_sgd", {"lr": 0.1}, p, steps=5, seeds=[1, 2, 3], mode="batched")
    assert forced.mode == "batched" and "not batch-invariant" in forced.mode_reason


class _SumNormalizedSGD(ReferenceOptimizer):
    """x ← x − lr·g/‖g‖ with ‖g‖² from a plain ``sum`` over the problem dims (a test optimizer whose batched
    arithmetic is row-independent but uses torch's thread-split reduction on long rows)."""

    registry_name = "_test_sum_normalized_sgd"

    def __init__(self, params, lr=0.1, *, seed=0, nonfinite="ignore", batch_dims=0):
        super().__init__(params, dict(lr=lr), seed=seed, nonfinite=nonfinite, batch_dims=batch_dims)

    def _init_state(self, p, group, state):
        pass

    def _update_param(self, p, grad, state, group):
        state["step"] += 1
        b = group["batch_dims"]
        sq = (grad * grad).reshape(*grad.shape[:b], -1).sum(-1)
        p.add_(grad / sq.sqrt().reshape(*sq.shape, *([1] * (grad.dim() - b))), alpha=-group["lr"])


def test_lone_seed_is_padded_so_long_reductions_match_the_batch(two_threads, monkeypatch):
    """d > torch's grain (32768): a lone row's sum is split across threads, which may round differently
    from the same row in a batch (it does for some rows, not all). With the runner's padding every seed
    alone equals itself in the batch; without it (MIN_BATCH = 1) some seed does not."""
    monkeypatch.setitem(algorithms.REGISTRY, "_test_sum_normalized_sgd", _SumNormalizedSGD)
    p = SeparableLogSum(40_000)
    seeds = [5, 6, 7, 8, 9, 10]
    kw = dict(steps=2, x0_radius=50.0, metrics=(), running=(), record_steps=[2])
    batch = run("_test_sum_normalized_sgd", {"lr": 0.5}, p, seeds=seeds, **kw)
    for i, seed in enumerate(seeds):
        alone = run("_test_sum_normalized_sgd", {"lr": 0.5}, p, seeds=[seed], **kw)
        assert torch.equal(batch.final_x[i], alone.final_x[0])
    monkeypatch.setattr(runner_module, "MIN_BATCH", 1)
    unpadded = [run("_test_sum_normalized_sgd", {"lr": 0.5}, p, seeds=[seed], **kw).final_x[0] for seed in seeds]
    assert not all(torch.equal(batch.final_x[i], x) for i, x in enumerate(unpadded))


# ----------------------------------------------------------------------------- traces and results
def test_log_steps():
    assert log_steps(100, 4) == [0, 1, 2, 3, 6, 10, 18, 32, 56, 100]
    assert log_steps(0) == [0]
    assert log_steps(5, include_zero=False) == [1, 2, 3, 4, 5]


def test_trace_layout_running_statistics_and_json(tmp_path):
    p = SeparableLogSum(12)
    result = run("adam", {"lr": 0.05}, p, steps=30, seeds=4, noise=AdditiveNoise(0.2), record_steps=range(31),
                 metrics={"f": "f", "g2": "grad_norm_sq", "dist": distance_to(p.x_star), "m": "state_norms",
                          "steps": state_value("step")})
    assert result.steps == list(range(31))
    assert result.trace["f"].shape == (31, 4)
    assert np.isnan(result.trace["m.exp_avg"][0]).all() and not np.isnan(result.trace["m.exp_avg"][1:]).any()
    np.testing.assert_array_equal(result.trace["steps"][1:, 0], np.arange(1, 31))
    g2 = result.trace["g2"]
    expected_mean = np.cumsum(g2[:-1], axis=0) / np.arange(1, 31)[:, None]
    np.testing.assert_allclose(result.trace["grad_norm_sq.mean"][1:], expected_mean, rtol=1e-13)
    np.testing.assert_array_equal(result.trace["grad_norm_sq.min"][1:], np.minimum.accumulate(g2[:-1], axis=0))
    assert np.isnan(result.trace["grad_norm_sq.mean"][0]).all()
    path = tmp_path / "r.json"
    result.save_json(path)
    loaded = json.loads(path.read_text())
    assert loaded["steps"] == result.steps and loaded["problem"]["L"] == p.L
    np.testing.assert_array_equal(np.array(loaded["trace"]["g2"]), g2)
    sub = result.for_seeds([2])
    assert sub.trace["f"].shape == (31, 1) and torch.equal(sub.final_x[0], result.final_x[2])


def test_default_recording_is_log_spaced_and_contains_the_last_step():
    result = run("sgd", {"lr": 0.1}, SeparableLogSum(3), steps=1000, seeds=2, metrics=("f",))
    assert result.steps == log_steps(1000) and result.steps[-1] == 1000
    assert result.trace["f"].shape == (len(result.steps), 2)


def test_per_seed_start_and_stochastic_problem():
    p = RobustRegression(d=4, n_samples=500, seed=1)
    batch = run("sgd", {"lr": 0.5}, p, steps=20, seeds=[8, 9, 10], x0_radius=1.0,
                oracle=Oracle(p, AdditiveNoise(0.01), batch_size=4), metrics=("f", "grad_norm_sq"))
    alone = run("sgd", {"lr": 0.5}, p, steps=20, seeds=[9], x0_radius=1.0, oracle=Oracle(p, AdditiveNoise(0.01), batch_size=4),
                metrics=("f", "grad_norm_sq"))
    _same_seed_results(batch, 1, alone, 0)
    assert batch.trace["f"][-1].mean() < batch.trace["f"][0].mean()
    assert batch.oracle == {"sample": True, "batch_size": 4, "noise": AdditiveNoise(0.01).describe()}


def test_matrix_metrics(matrix_problem):
    result = run("galore_adamw", {"lr": 0.05, "rank": 2, "update_proj_gap": 3}, matrix_problem, steps=4, seeds=2,
                 metrics=("grad_stable_rank", "grad_energy_rank", "basis_rank"))
    assert result.trace["basis_rank"][-1].tolist() == [2.0, 2.0]
    assert (result.trace["grad_stable_rank"] >= 1).all()
    assert (result.trace["grad_energy_rank"] >= 1).all()


def test_sgd_full_batch_run_matches_hand_written_gradient_descent():
    """No noise, plain SGD: the runner is gradient descent x_t = x_{t-1} - η ∇f(x_{t-1}), bit for bit
    (written with SGD's own arithmetic, ``add(g, alpha=-η)``, whose rounding differs from ``x - η*g``)."""
    p = SeparableLogSum(5, c=torch.linspace(-1, 1, 5))
    result = run("sgd", {"lr": 0.2}, p, steps=25, seeds=2, metrics=("f",))
    x = p.x0.expand(2, 5).clone()
    for _ in range(25):
        x = x.add(p.grad(x), alpha=-0.2)
    assert torch.equal(result.final_x, x)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(optimizer="nadam"), ValueError, "unknown optimizer 'nadam'"),
        (dict(optimizer=dict), TypeError, "torch.optim.Optimizer subclass"),
        (dict(optimizer=3), TypeError, "registry name"),
        (dict(hyper={"batch_dims": 1}), ValueError, "must not set batch_dims"),
        (dict(mode="fast"), ValueError, "mode must be one of"),
        (dict(steps=-1), ValueError, "steps must be >= 0"),
        (dict(seeds=0), ValueError, "seeds must be >= 1"),
        (dict(x0=torch.zeros(3, 4, dtype=torch.float64)), ValueError, "x0 has 3 rows but there are 2 seeds"),
        (dict(x0=torch.zeros(2, 5, dtype=torch.float64)), ValueError, "x0 must have shape"),
        (dict(x0_radius=-1.0), ValueError, "radius must be >= 0"),
        (dict(metrics=("f", "loss")), ValueError, "unknown metric 'loss'"),
        (dict(metrics={"bad": lambda problem, x, view: torch.zeros(3)}), ValueError, "leading seed dimension of size 2"),
        (dict(record_steps=[0, 99]), ValueError, "record_steps must be <= steps"),
        (dict(metrics=("dist_to_opt",), problem="qc"), ValueError, "no known minimiser"),
    ],
)
def test_bad_run_arguments(kwargs, error, match):
    from synthetic import QuadraticCosine

    problem = QuadraticCosine(torch.ones(4)) if kwargs.pop("problem", None) == "qc" else SeparableLogSum(4)
    args = dict(optimizer="sgd", hyper={"lr": 0.1}, problem=problem, steps=3, seeds=2)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        run(args.pop("optimizer"), args.pop("hyper"), args.pop("problem"), **args)


def test_a_class_runs_as_its_registry_name_and_a_subclass_runs_without_registration():
    import algorithms

    p = SeparableLogSum(4)
    by_name = run("adam", {"lr": 0.05}, p, steps=20, seeds=3, noise=AdditiveNoise(0.1))
    by_class = run(algorithms.REGISTRY["adam"], {"lr": 0.05}, p, steps=20, seeds=3, noise=AdditiveNoise(0.1))
    assert by_class.optimizer == "adam"
    np.testing.assert_array_equal(by_name.trace["grad_norm_sq"], by_class.trace["grad_norm_sq"])

    class HalfStepSGD(algorithms.REGISTRY["sgd"]):
        def _update_param(self, p, grad, state, group):
            super()._update_param(p, 0.5 * grad, state, group)

    before = dict(algorithms.REGISTRY)
    half = run(HalfStepSGD, {"lr": 0.2}, p, steps=10, seeds=2)
    plain = run("sgd", {"lr": 0.1}, p, steps=10, seeds=2)
    assert half.optimizer.endswith(":test_a_class_runs_as_its_registry_name_and_a_subclass_runs_without_registration."
                                   "<locals>.HalfStepSGD")
    np.testing.assert_allclose(half.trace["f"], plain.trace["f"], rtol=1e-14)
    assert algorithms.REGISTRY == before


def test_noise_and_oracle_are_exclusive():
    p = SeparableLogSum(3)
    with pytest.raises(ValueError, match="either noise or oracle"):
        run("sgd", {"lr": 0.1}, p, steps=1, noise=AdditiveNoise(0.1), oracle=Oracle(p))
    with pytest.raises(ValueError, match="oracle.problem is not the problem"):
        run("sgd", {"lr": 0.1}, p, steps=1, oracle=Oracle(SeparableLogSum(3)))
    with pytest.raises(ValueError, match="no stochastic oracle of its own"):
        Oracle(p, sample=True)


@pytest.mark.parametrize("name", ["mars_adamw", "mars_lion"])
def test_two_point_estimators_get_the_same_sample_at_both_points(name):
    """MARS-exact (the runner's closure re-evaluates the oracle at x_{t-2} on ξ_t) and MARS's look-ahead
    protocol (∇f(x_{t-1}, ξ_{t+1}) handed over before step t) compute the same h_t, so their trajectories
    are identical; MARS-approx (h_t = g_{t-1}, another sample) is not."""
    if name not in algorithms.REGISTRY:
        pytest.skip(f"{name} is not registered")
    p = MatrixQuadratic.random(5, 4, N=3, seed=2)
    kw = dict(steps=12, seeds=[1, 2, 3], oracle=Oracle(p, AdditiveNoise(0.3), batch_size=1), metrics=("f",))
    exact = run(name, {"lr": 0.01, "estimator": "exact"}, p, **kw)
    lookahead = run(name, {"lr": 0.01, "estimator": "exact_lookahead"}, p, **kw)
    approx = run(name, {"lr": 0.01, "estimator": "approx"}, p, **kw)
    assert exact.mode == lookahead.mode == "batched"
    assert max_rel_err(exact.final_x, lookahead.final_x) <= 1e-13
    assert max_rel_err(approx.final_x, exact.final_x) > 1e-6


def test_clip_count_metric_reads_the_optimizer_state():
    """MARS keeps state["clip_count"] per seed; the trace holds it (NaN before the first step), in both modes."""
    if "mars_adamw" not in algorithms.REGISTRY:
        pytest.skip("mars_adamw is not registered")
    p = MatrixQuadratic.random(5, 4, N=2, seed=1)
    kw = dict(steps=4, seeds=3, noise=AdditiveNoise(5.0), metrics=("clip_count",), record_steps=range(5))
    batched = run("mars_adamw", {"lr": 0.01}, p, **kw)  # large noise: ‖c_t‖ > 1, clipping fires every step
    looped = run("mars_adamw", {"lr": 0.01}, p, mode="loop", **kw)
    expected = np.array([[np.nan] * 3] + [[float(t)] * 3 for t in range(1, 5)])
    np.testing.assert_array_equal(batched.trace["clip_count"], expected)
    np.testing.assert_array_equal(looped.trace["clip_count"], expected)
    with pytest.raises(KeyError, match="no 'clip_count'"):
        run("adam", {"lr": 0.01}, p, **kw)
