r"""Benchmark: the batched many-seed runner against a plain per-seed loop over torch.optim.

Workload (issue #5): P1 (:class:`synthetic.SeparableLogSum`, ``d = 1000``, float64), ``S = 256`` seeds, with
Gaussian additive noise (``gaussian``), Rademacher noise (``rademacher``) and exact gradients (``exact``),
measured for Adam and, when it is registered, AdaGrad-Norm. Drawing the noise costs about the same per number
whether it is batched or not (a Gaussian pair costs one SplitMix64 output and float32 log/sqrt/cos/sin,
:mod:`synthetic.rng`), so it bounds the speed-up of noisy runs; the three workloads show by how much.

* **batched**: :func:`synthetic.run` with the registry optimizer on one ``[S, d]`` parameter
  (``batch_dims=1``), the counter-based noise streams, no recording except the last step.
* **loop, plain** (the headline baseline): what one writes without the runner, ``S`` independent runs, each
  with its own ``torch.Generator`` and ``torch.randn`` noise, the gradient written as a torch expression, and
  ``torch.optim.Adam`` (AdaGrad-Norm has no torch.optim version, so ``S`` instances of the registry's
  ``adagrad_norm`` on ``[d]`` parameters).
* **loop, same streams**: the same loop drawing each seed's noise from its own :class:`synthetic.SeedStreams`,
  so its trajectories must equal the runner's; the report gives the largest relative difference (Adam:
  round-off between the registry Adam and torch.optim.Adam; AdaGrad-Norm: the same code).

Throughput is ``steps × seeds / seconds``, the best of ``repeats`` short alternated repetitions per side, all
in one process with ``threads`` intra-op threads; results go to a JSON file with the machine's load averages.
Other processes slow both sides, the two-thread batched side most (an OpenMP region waits for a descheduled
thread): on a shared machine, compare runs at similar load, and ``--threads 1`` gives a lower bound that
contention barely moves. The ``verify`` command keeps freed memory in the heap
(:mod:`synthetic.allocator`); without that the batched side's ``[S, d]`` temporaries are returned to the OS
and page-faulted back every step whenever glibc trims the heap. With glibc's defaults the batched
exact-gradient Adam step was bimodal on the 2-core machine (45k to 208k seed-steps/s over repeated runs of
the same command); with retained memory it stayed at 144k–190k. ``OPTVERIFY_MALLOC=system`` measures glibc's
defaults; the JSON records which was used (``machine.allocator``).
"""

from __future__ import annotations

import json
import math
import platform
import time
from typing import Any, Callable

import torch

import algorithms
from synthetic import allocator
from verify.oracle import relative_error

__all__ = ["run_benchmark", "DEFAULTS"]

DEFAULTS = dict(dim=1000, seeds=256, batched_steps=100, loop_steps=5, repeats=6, threads=2, noise_std=0.1, lr=1e-2,
                dtype="float64")
DTYPES = {"float64": torch.float64, "float32": torch.float32}


def _problem(dim: int, dtype: torch.dtype = torch.float64):
    from synthetic import SeparableLogSum

    return SeparableLogSum(dim, a=1.0, c=torch.linspace(-1.0, 1.0, dim, dtype=dtype), dtype=dtype)


def _time_batched(optimizer: str, hyper: dict, problem, noise, seeds: int, steps: int) -> tuple[float, torch.Tensor]:
    """One :func:`synthetic.run` of ``steps`` steps on ``seeds`` seeds (the oracle included)."""
    from synthetic import run

    t0 = time.perf_counter()
    result = run(optimizer, hyper, problem, steps=steps, seeds=seeds, noise=noise, metrics=(), running=(),
                 record_steps=[steps], mode="batched")
    return time.perf_counter() - t0, result.final_x


def _plain_gradient(problem) -> Callable[[torch.Tensor], torch.Tensor]:
    a, c, w = problem.a, problem.c, problem.width
    two_a_over_w = 2.0 * a / w

    inv_w = 1.0 / w

    def grad(x: torch.Tensor) -> torch.Tensor:
        u = (x - c) * inv_w
        return two_a_over_w * u / (1.0 + u * u)

    return grad


def _loop_optimizer(optimizer: str, param: torch.Tensor, hyper: dict):
    if optimizer == "adam":
        return torch.optim.Adam([param], lr=hyper["lr"])
    return algorithms.make(optimizer, [param], **hyper)


def _time_loop(optimizer: str, hyper: dict, problem, noise_std: float, seeds: int, steps: int,
               same_streams: bool, distribution: str = "gaussian") -> tuple[float, torch.Tensor]:
    """``seeds`` independent runs one after the other (the per-seed loop a user writes); ``noise_std = 0``
    gives exact gradients."""
    from synthetic import SeedStreams

    grad = _plain_gradient(problem)
    finals = []
    t0 = time.perf_counter()
    for s in range(seeds):
        x = problem.x0.clone().requires_grad_(True)
        opt = _loop_optimizer(optimizer, x, hyper)
        draw = _draw_function(SeedStreams([s]) if same_streams else torch.Generator().manual_seed(s), problem,
                              distribution)
        for t in range(1, steps + 1):
            with torch.no_grad():
                x.grad = grad(x) + noise_std * draw(t) if noise_std else grad(x)
            opt.step()
        finals.append(x.detach())
    return time.perf_counter() - t0, torch.stack(finals)


def _draw_function(source, problem, distribution: str):
    """Unit-variance noise for one seed at step t: from its SeedStreams (the runner's numbers) or a torch.Generator."""
    shape, dtype = problem.shape, problem.dtype
    if not isinstance(source, torch.Generator):
        if distribution == "gaussian":
            return lambda t: source.normal(t, "noise", shape, dtype)[0]
        return lambda t: source.rademacher(t, "noise", shape, dtype)[0]
    if distribution == "gaussian":
        return lambda t: torch.randn(shape, generator=source, dtype=dtype)
    return lambda t: torch.randint(0, 2, shape, generator=source).to(dtype).mul_(2.0).sub_(1.0)


def _measure(name: str, hyper: dict, problem, noise_std: float, seeds: int, batched_steps: int, loop_steps: int,
             repeats: int, workload: str, echo) -> dict[str, Any]:
    from synthetic import AdditiveNoise

    dist = "rademacher" if workload == "rademacher" else "gaussian"
    noise = AdditiveNoise(noise_std, dist) if noise_std else None
    loop = dict(distribution=dist)
    _time_batched(name, hyper, problem, noise, seeds, 2)  # warm-up (allocator, first-call dispatch), not timed
    _time_loop(name, hyper, problem, noise_std, 2, 2, same_streams=False, **loop)
    tb = tp = ts = math.inf
    for _ in range(repeats):  # alternate the sides so that load changes hit both
        tb = min(tb, _time_batched(name, hyper, problem, noise, seeds, batched_steps)[0])
        tp = min(tp, _time_loop(name, hyper, problem, noise_std, seeds, loop_steps, same_streams=False, **loop)[0])
        if noise_std:
            ts = min(ts, _time_loop(name, hyper, problem, noise_std, seeds, loop_steps, same_streams=True, **loop)[0])
    # the comparison is of equal work: with the same streams the loop reproduces the runner's trajectories
    _, xb = _time_batched(name, hyper, problem, noise, seeds, loop_steps)
    _, xs = _time_loop(name, hyper, problem, noise_std, seeds, loop_steps, same_streams=True, **loop)
    diff = relative_error(xb, xs)
    rate_b = batched_steps * seeds / tb
    rate_p = loop_steps * seeds / tp
    case = {
        "optimizer": name,
        "workload": workload,
        "loop_optimizer": "torch.optim.Adam" if name == "adam" else f"algorithms.make('{name}') per seed",
        "batched_seed_steps_per_s": rate_b,
        "loop_plain_seed_steps_per_s": rate_p,
        "speedup_vs_plain_loop": rate_b / rate_p,
        "max_rel_diff_batched_vs_same_streams_loop": diff,
    }
    line = (f"{name:>13} {workload:>5}: batched {rate_b:9.0f} seed-steps/s | plain loop {rate_p:7.0f} "
            f"({case['speedup_vs_plain_loop']:5.1f}x)")
    if noise_std:
        rate_s = loop_steps * seeds / ts
        case["loop_same_streams_seed_steps_per_s"] = rate_s
        case["speedup_vs_same_streams_loop"] = rate_b / rate_s
        line += f" | same-stream loop {rate_s:7.0f} ({case['speedup_vs_same_streams_loop']:5.1f}x)"
    echo(line + f" | batched vs loop trajectories: max rel diff {diff:.1e}")
    return case


def run_benchmark(*, dim: int = DEFAULTS["dim"], seeds: int = DEFAULTS["seeds"],
                  batched_steps: int = DEFAULTS["batched_steps"], loop_steps: int = DEFAULTS["loop_steps"],
                  repeats: int = DEFAULTS["repeats"], threads: int = DEFAULTS["threads"],
                  noise_std: float = DEFAULTS["noise_std"], lr: float = DEFAULTS["lr"], dtype: str = DEFAULTS["dtype"],
                  optimizers: tuple[str, ...] | None = None, echo=print) -> dict[str, Any]:
    """Measure every case side by side; returns the JSON-ready report."""
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    load_before = _load_average()
    try:
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {tuple(DTYPES)}, got {dtype!r}")
        problem = _problem(dim, DTYPES[dtype])
        wanted = optimizers or ("adam", "adagrad_norm")
        cases = []
        for name in wanted:
            if name not in algorithms.REGISTRY:
                echo(f"[skip] {name}: not registered")
                continue
            for workload, std in (("gaussian", noise_std), ("rademacher", noise_std), ("exact", 0.0)):
                cases.append(_measure(name, {"lr": lr}, problem, std, seeds, batched_steps, loop_steps, repeats, workload, echo))
        return {
            "workload": {"problem": "separable_log (P1)", "dim": dim, "seeds": seeds, "dtype": dtype,
                         "noise": f"gaussian additive, std {noise_std}", "lr": lr, "batched_steps": batched_steps,
                         "loop_steps": loop_steps, "repeats": repeats},
            "machine": {"threads": threads, "allocator": dict(allocator.STATUS), "load_average_before": load_before, "load_average_after": _load_average(),
                        "torch": torch.__version__, "python": platform.python_version(),
                        "processor": platform.processor() or platform.machine(),
                        "cpu_capability": torch.backends.cpu.get_cpu_capability()},
            "cases": cases,
        }
    finally:
        torch.set_num_threads(previous_threads)


def _load_average() -> list[float] | None:
    """The 1/5/15-minute load averages (other processes compete for the cores; reported, not corrected)."""
    try:
        import os

        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def save(report: dict, path) -> None:
    with open(path, "w") as fh:
        json.dump(report, fh, indent=2)
