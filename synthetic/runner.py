r"""Run any registered optimizer on ``S`` independent seeds of one synthetic problem, in one batched computation.

.. code-block:: python

    from synthetic import run, SeparableLogSum, AdditiveNoise
    result = run("adam", {"lr": 1e-2}, SeparableLogSum(1000), steps=4096, seeds=256,
                 noise=AdditiveNoise(0.1), metrics=("f", "grad_norm_sq"))
    result.trace["grad_norm_sq"]        # numpy array [len(result.steps), 256]
    result.save_json("adam_p1.json")

**A seed** is an independent random stream (:class:`synthetic.rng.SeedStreams`): its oracle noise, its
finite-sum samples and, with ``x0_radius > 0``, its own starting point.

**Batched mode.** The optimizer is built with ``batch_dims=1`` on a single ``[S, *shape]`` parameter, so one
``step()`` advances every seed (the optimizer's reductions never cross the seed dimension). Used when the
class sets ``supports_batch_dims = True``.

**Loop mode** (transparent fallback). ``S`` optimizers on ``S`` parameters of the problem's shape, one per
seed, each with its own ``seed`` hyperparameter derived from ``(hyper["seed"], seed)`` so that randomized
projections are independent across seeds; the oracle and the metrics are still evaluated batched. Used
when the class cannot batch (data-dependent shapes, e.g. adaptive ranks), and when an optimizer turns out
to draw random numbers: a batched optimizer draws them for all seeds from one generator, so a seed's
numbers would depend on the batch; ``mode="auto"`` notices the generator state appearing and restarts
the run in loop mode (``result.mode_reason`` says so).

**Bit-identity.** A seed's trajectory is bit-identical whether it runs alone or in a batch of any size:
its random numbers are a function of ``(seed, step)`` only, the problems are batch-invariant
(:mod:`synthetic._invariant`), torch's elementwise kernels and short row reductions are too, and a lone
seed is run in a batch of two (a discarded copy of itself) because torch splits a reduction over a
single row longer than 32768 elements across threads, which rounds differently from the same row inside
a batch. This holds for optimizers whose batched arithmetic is itself row-independent (tests check every
registered optimizer).

**Gradients reach the optimizer through** ``step(closure)``: the closure hands over the oracle's gradient
at the query point, and evaluates the oracle afresh when the optimizer has loaded another point (MARS-exact
evaluates :math:`\nabla f(x_{t-2}, \xi_t)` too; the counter-based streams make ξ_t the same sample). The
look-ahead protocol of MARS (``estimator="exact_lookahead"``: ``store_lookahead_grads()`` receives
:math:`\nabla f(x_{t-1}, \xi_{t+1})` before step t) is driven as well, so both exact estimators give the same
trajectory.

**Recording.** Metrics (:mod:`synthetic.metrics`) are evaluated at the recording steps (default
:func:`log_steps`: 0, then about 8 log-spaced steps per decade, and the last step) after the optimizer
step; running metrics (default ``grad_norm_sq``) accumulate their mean and minimum over every query point.
Results are plain numpy arrays and lists (:meth:`RunResult.to_dict`, :meth:`RunResult.save_json`).

Step convention: step :math:`t = 1, \dots, T` queries :math:`g_t = g(x_{t-1}, \xi_t)`, then the optimizer
produces :math:`x_t`; ``trace[m][k]`` is the metric at :math:`x_{\text{steps}[k]}`.
"""

from __future__ import annotations

import inspect
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch

import algorithms
from algorithms import ReferenceOptimizer, param_seed
from algorithms.validation import check_choice, check_int, check_nonnegative

from .metrics import OptimizerView, resolve_metrics, resolve_running
from .noise import NoiseModel
from .oracle import Oracle
from .problems import Problem
from .rng import SeedStreams

__all__ = ["run", "resolve_optimizer", "RunResult", "log_steps", "MODES", "BatchInvarianceWarning"]

MODES = ("auto", "batched", "loop")
#: a lone seed is padded to this many rows in batched mode (see the module docstring)
MIN_BATCH = 2


class BatchInvarianceWarning(RuntimeWarning):
    """A forced batched run whose optimizer draws random numbers (seeds then depend on the batch)."""


class _NeedsLoop(Exception):
    pass


def log_steps(total: int, per_decade: int = 8, *, include_zero: bool = True) -> list[int]:
    """Recording steps: ``0``, then ``round(10^(k/per_decade))`` up to ``total``, and ``total`` (sorted, unique)."""
    total = check_int("total", total, minimum=0)
    per_decade = check_int("per_decade", per_decade, minimum=1)
    steps = {0} if include_zero else set()
    if total >= 1:
        k = 0
        while True:
            s = round(10 ** (k / per_decade))
            if s > total:
                break
            steps.add(s)
            k += 1
        steps.add(total)
    return sorted(steps)


@dataclass
class RunResult:
    """The outcome of :func:`run`: recorded metrics as numpy arrays ``[len(steps), S, ...]`` plus metadata."""

    optimizer: str
    hyper: dict[str, Any]
    problem: dict[str, Any]
    oracle: dict[str, Any]
    seeds: list[int]
    steps: list[int]
    trace: dict[str, np.ndarray]
    mode: str
    mode_reason: str
    wall_time: float
    final_x: torch.Tensor = field(repr=False)

    def to_dict(self, include_final_x: bool = False) -> dict[str, Any]:
        out = {
            "optimizer": self.optimizer,
            "hyper": _jsonable(self.hyper),
            "problem": _jsonable(self.problem),
            "oracle": _jsonable(self.oracle),
            "seeds": list(self.seeds),
            "steps": list(self.steps),
            "trace": {k: v.tolist() for k, v in self.trace.items()},
            "mode": self.mode,
            "mode_reason": self.mode_reason,
            "wall_time": self.wall_time,
        }
        if include_final_x:
            out["final_x"] = self.final_x.tolist()
        return out

    def save_json(self, path, include_final_x: bool = False) -> None:
        with open(path, "w") as fh:
            json.dump(self.to_dict(include_final_x), fh, indent=1, allow_nan=True)

    def for_seeds(self, index: Sequence[int]) -> "RunResult":
        """The same result restricted to the seeds at positions ``index``."""
        index = list(index)
        return RunResult(self.optimizer, dict(self.hyper), dict(self.problem), dict(self.oracle),
                         [self.seeds[i] for i in index], list(self.steps),
                         {k: v[:, index] for k, v in self.trace.items()}, self.mode, self.mode_reason,
                         self.wall_time, self.final_x[index])


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if isinstance(obj, (np.ndarray, np.generic)):
        return obj.tolist()
    if isinstance(obj, torch.dtype):
        return str(obj).replace("torch.", "")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


# ----------------------------------------------------------------------------- the two engines
class _Engine:
    """Holds the parameters and optimizers of one run; ``step(g)`` applies gradients ``[S, *shape]``."""

    batched: bool

    def x(self) -> torch.Tensor:
        raise NotImplementedError

    def view(self) -> OptimizerView:
        raise NotImplementedError


def _uses_lookahead(optimizer) -> bool:
    """MARS's ``estimator="exact_lookahead"`` protocol: the next sample's gradient is handed over before each step."""
    return callable(getattr(optimizer, "store_lookahead_grads", None)) and any(
        g.get("estimator") == "exact_lookahead" for g in optimizer.param_groups
    )


def _gradient_closure(param: torch.Tensor, g: torch.Tensor, evaluate):
    """A ``step(closure)`` closure: the precomputed ``g`` while ``param`` still holds the query point (its
    version counter is unchanged), else a fresh oracle evaluation at whatever point the optimizer loaded
    (MARS-exact evaluates at the previous iterate too; the sample ξ_t is the same by construction)."""
    version = param._version

    def closure():
        param.grad = g if param._version == version else evaluate(param.detach())
        return None

    return closure


def _let_nonfinite_through(cls: type, hyper: dict) -> dict:
    """``nonfinite="ignore"`` unless ``hyper`` chooses: a seed that diverges is a result to record (NaN in
    its own slice of the batch), not an error that stops the other seeds (the optimizers' default raises)."""
    accepted = inspect.signature(cls.__init__).parameters
    forwards = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
    if ("nonfinite" in accepted or (forwards and issubclass(cls, ReferenceOptimizer))) and "nonfinite" not in hyper:
        return {**hyper, "nonfinite": "ignore"}
    return hyper


class _BatchedEngine(_Engine):
    batched = True

    def __init__(self, cls: type, hyper: dict, x0: torch.Tensor, n_seeds: int) -> None:
        self.n_seeds = n_seeds
        self.check_randomness = True
        self.param = x0.clone()
        self.optimizer = cls([self.param], **_let_nonfinite_through(cls, hyper), batch_dims=1)
        self.lookahead = _uses_lookahead(self.optimizer)

    def x(self) -> torch.Tensor:
        return self.param[: self.n_seeds]

    def padded_x(self) -> torch.Tensor:
        return self.param

    def store_lookahead(self, g_next: torch.Tensor) -> None:
        self.param.grad = g_next
        self.optimizer.store_lookahead_grads()

    def step(self, g: torch.Tensor, evaluate) -> None:
        self.optimizer.step(_gradient_closure(self.param, g, evaluate))
        if self.check_randomness and "rng_state" in self.optimizer.state[self.param]:
            raise _NeedsLoop

    def view(self) -> OptimizerView:
        return OptimizerView([self.optimizer], [self.param], self.n_seeds, batched=True)


class _LoopEngine(_Engine):
    batched = False

    def __init__(self, cls: type, hyper: dict, x0: torch.Tensor, seeds: Sequence[int]) -> None:
        base_seed = hyper.get("seed", 0)
        takes_seed = "seed" in inspect.signature(cls.__init__).parameters
        self.params = [x0[s].clone() for s in range(len(seeds))]
        self.optimizers = [
            cls([p], **_let_nonfinite_through(cls, {**hyper, "seed": param_seed(base_seed, seed)} if takes_seed else hyper))
            for p, seed in zip(self.params, seeds)
        ]
        self.lookahead = _uses_lookahead(self.optimizers[0])

    def x(self) -> torch.Tensor:
        return torch.stack(self.params)

    padded_x = x

    def store_lookahead(self, g_next: torch.Tensor) -> None:
        for s, (p, opt) in enumerate(zip(self.params, self.optimizers)):
            p.grad = g_next[s].clone()
            opt.store_lookahead_grads()

    def step(self, g: torch.Tensor, evaluate) -> None:
        for s, (p, opt) in enumerate(zip(self.params, self.optimizers)):
            def evaluate_one(x, s=s):
                return evaluate(x.unsqueeze(0), [s])[0]

            opt.step(_gradient_closure(p, g[s].clone(), evaluate_one))

    def view(self) -> OptimizerView:
        return OptimizerView(self.optimizers, self.params, len(self.params), batched=False)


# ----------------------------------------------------------------------------- the run
def resolve_optimizer(optimizer: str | type) -> tuple[str, type]:
    """``(label, class)`` for a registry name or an optimizer class (e.g. a planted-bug subclass).

    A class is run as given, never added to the registry; its label is its registry name when it is
    the registered class itself, else ``module:QualName``.
    """
    if isinstance(optimizer, str):
        if optimizer not in algorithms.REGISTRY:
            raise ValueError(f"unknown optimizer {optimizer!r}; registered: {sorted(algorithms.REGISTRY)}")
        return optimizer, algorithms.REGISTRY[optimizer]
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        name = getattr(optimizer, "registry_name", None)
        if name is not None and algorithms.REGISTRY.get(name) is optimizer:
            return name, optimizer
        return f"{optimizer.__module__}:{optimizer.__qualname__}", optimizer
    raise TypeError("optimizer must be a registry name (str) or a torch.optim.Optimizer subclass, "
                    f"got {type(optimizer).__name__}")


def _check_hyper(hyper) -> dict:
    hyper = {} if hyper is None else dict(hyper)
    if "batch_dims" in hyper:
        raise ValueError("hyper must not set batch_dims: the runner chooses it (1 in batched mode, 0 in loop mode)")
    return hyper


def run(
    optimizer: str | type,
    hyper: Mapping[str, Any] | None,
    problem: Problem,
    *,
    steps: int,
    seeds: int | Sequence[int] = 1,
    noise: NoiseModel | None = None,
    oracle: Oracle | None = None,
    x0_radius: float = 0.0,
    x0: torch.Tensor | None = None,
    metrics: Sequence[str] | Mapping[str, Any] = ("f", "grad_norm_sq"),
    running: Sequence[str] | Mapping[str, Any] = ("grad_norm_sq",),
    record_steps: Sequence[int] | None = None,
    mode: str = "auto",
) -> RunResult:
    """Run ``optimizer`` (a registry name, or an optimizer class such as a planted-bug subclass) with ``hyper`` for ``steps`` steps on ``seeds`` (a count ``S``,
    meaning seeds ``0..S-1``, or explicit seed integers).

    ``noise`` builds the default :class:`Oracle` (``oracle`` gives one explicitly: sampling, batch size).
    ``metrics`` are recorded at ``record_steps`` (default :func:`log_steps`); ``running`` metrics need the
    exact gradient at every query point, which the oracle computes anyway for additive noise but costs
    one extra full gradient per step on sampled (finite-sum) problems: pass ``running=()`` to skip them.
    ``x0`` (``[S, *shape]``) overrides the starting points, else ``problem.initial_points(streams, x0_radius)``.
    ``mode``: ``"auto"`` (batched when possible, else a per-seed loop), ``"batched"`` or ``"loop"``.
    """
    label, cls = resolve_optimizer(optimizer)
    hyper = _check_hyper(hyper)
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a synthetic.problems.Problem, got {type(problem).__name__}")
    steps = check_int("steps", steps, minimum=0)
    mode = check_choice("mode", mode, MODES)
    streams = SeedStreams(seeds)
    if oracle is None:
        oracle = Oracle(problem, noise)
    elif noise is not None:
        raise ValueError("pass either noise or oracle, not both (the oracle holds its noise)")
    elif oracle.problem is not problem:
        raise ValueError("oracle.problem is not the problem being run")
    x0 = _starting_points(problem, streams, x0, x0_radius)
    record = _record_steps(record_steps, steps)
    metric_fns = resolve_metrics(metrics)
    running_fns = resolve_running(running)
    optimizer = (label, cls)

    if mode == "loop" or (mode == "auto" and not cls.supports_batch_dims):
        reason = "requested" if mode == "loop" else f"{cls.__name__}.supports_batch_dims is False"
        return _execute(optimizer, hyper, problem, oracle, streams, x0, steps, record, metric_fns, running_fns,
                        batched=False, reason=reason)
    if not cls.supports_batch_dims:
        raise ValueError(f"mode='batched' but {cls.__name__} does not support batch_dims (supports_batch_dims=False)")
    try:
        return _execute(optimizer, hyper, problem, oracle, streams, x0, steps, record, metric_fns, running_fns,
                        batched=True, reason="supports_batch_dims", strict=(mode == "auto"))
    except _NeedsLoop:
        reason = (f"{cls.__name__} drew random numbers (state['rng_state']): one generator for all seeds would make a "
                  "seed depend on the batch, so the run was restarted with one optimizer per seed")
        return _execute(optimizer, hyper, problem, oracle, streams, x0, steps, record, metric_fns, running_fns,
                        batched=False, reason=reason)


def _starting_points(problem: Problem, streams: SeedStreams, x0, x0_radius: float) -> torch.Tensor:
    if x0 is not None:
        if x0_radius:
            raise ValueError("pass either x0 or x0_radius, not both")
        x0 = problem.check_point(x0, "x0")
        if x0.shape[0] != len(streams):
            raise ValueError(f"x0 has {x0.shape[0]} rows but there are {len(streams)} seeds")
        return x0.clone()
    return problem.initial_points(streams, check_nonnegative("x0_radius", x0_radius))


def _record_steps(record_steps, steps: int) -> list[int]:
    if record_steps is None:
        return log_steps(steps)
    out = sorted({check_int("record_steps", s, minimum=0) for s in record_steps})
    if out and out[-1] > steps:
        raise ValueError(f"record_steps must be <= steps={steps}, got {out[-1]}")
    return out


def _execute(optimizer: tuple[str, type], hyper, problem, oracle, streams, x0, steps, record, metric_fns, running_fns, *, batched: bool,
             reason: str, strict: bool = True) -> RunResult:
    t_start = time.perf_counter()
    label, cls = optimizer
    n = len(streams)
    if batched:
        pad = max(0, MIN_BATCH - n)
        run_streams = streams if not pad else SeedStreams(list(streams.seeds) + [streams.seeds[0]] * pad)
        run_x0 = x0 if not pad else torch.cat([x0, x0[:1].expand(pad, *x0.shape[1:])])
        engine: _Engine = _BatchedEngine(cls, hyper, run_x0, n)
    else:
        run_streams = streams
        engine = _LoopEngine(cls, hyper, x0, streams.seeds)

    trace: dict[str, dict[int, np.ndarray]] = {}
    sums = {name: torch.zeros(n, dtype=torch.float64) for name in running_fns}
    mins = {name: torch.full((n,), math.inf, dtype=torch.float64) for name in running_fns}
    record_set = set(record)

    def record_now(t: int) -> None:
        x = engine.x()
        view = engine.view()
        k = record.index(t)
        for name, fn in metric_fns.items():
            _store(trace, name, k, fn(problem, x, view), n)
        for name in running_fns:
            _store(trace, f"{name}.mean", k, sums[name] / t if t else torch.full((n,), math.nan, dtype=torch.float64), n)
            _store(trace, f"{name}.min", k, mins[name].clone(), n)

    if 0 in record_set:
        record_now(0)
    for t in range(1, steps + 1):
        x_query = engine.padded_x().detach()
        g, exact = oracle(x_query, run_streams, t)
        if running_fns:
            grad = exact if exact is not None else problem.grad(x_query)
            for name, fn in running_fns.items():
                value = fn(problem, x_query[:n], grad[:n]).to(torch.float64)
                sums[name] += value
                mins[name] = torch.minimum(mins[name], value)
        if engine.lookahead and t < steps:
            engine.store_lookahead(oracle(x_query, run_streams, t + 1)[0])

        def evaluate(x, rows=None, t=t):
            streams_here = run_streams if rows is None else run_streams.select(rows)
            return oracle(x, streams_here, t)[0]

        try:
            engine.step(g, evaluate)
        except _NeedsLoop:
            if strict:
                raise
            warnings.warn(f"{label} draws random numbers from one generator for all seeds in batched mode: "
                          "seeds are not batch-invariant in this run", BatchInvarianceWarning, stacklevel=3)
            engine.check_randomness = False  # warned once; the step was applied, keep running batched
            reason = f"{reason}; forced batched although the optimizer draws random numbers (not batch-invariant)"
        if t in record_set:
            record_now(t)

    return RunResult(
        optimizer=label,
        hyper=dict(hyper),
        problem=problem.constants(),
        oracle=oracle.describe(),
        seeds=list(streams.seeds),
        steps=[s for s in record],
        trace={name: _align(values, len(record)) for name, values in trace.items()},
        mode="batched" if batched else "loop",
        mode_reason=reason,
        wall_time=time.perf_counter() - t_start,
        final_x=engine.x().detach().clone(),
    )


def _store(trace: dict, name: str, index: int, value, n: int) -> None:
    if isinstance(value, Mapping):
        for key, v in value.items():
            _store(trace, f"{name}.{key}", index, v, n)
        return
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value)
    if value.dim() == 0 or value.shape[0] != n:
        raise ValueError(f"metric {name!r} must return a tensor with a leading seed dimension of size {n}, "
                         f"got shape {tuple(value.shape)}")
    trace.setdefault(name, {})[index] = value.detach().to(torch.float64).cpu().numpy()


def _align(values: dict[int, np.ndarray], n_records: int) -> np.ndarray:
    """Stack one metric's records; steps where it was not available (e.g. state before step 1) are NaN."""
    shapes = {v.shape for v in values.values()}
    if len(shapes) != 1:
        raise ValueError(f"a metric changed shape across recording steps: {sorted(shapes)}")
    (shape,) = shapes
    out = np.full((n_records, *shape), np.nan)
    for k, v in values.items():
        out[k] = v
    return out
