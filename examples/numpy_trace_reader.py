"""Check an optimizer written in any framework against an optverify golden trace, with numpy alone.

A trace (``verify trace NAME --out FILE.npz``; committed ones in ``results/oracle/traces/``) holds
the float64 reference run: initial parameters, the gradient of every step, the parameters (and state
tensors) after each recorded step, and JSON metadata with the effective hyperparameters. To check a
JAX/optax, C++ or numpy implementation: start from ``init``, feed it ``grad`` step by step, and
compare its parameters with ``param`` at the recorded steps by ``max|a - b| / max|b|``.

This file needs only numpy (no torch, no optverify). It includes two implementations written from
the papers, Adam (torch convention: decoupled decay before the update, ε after the bias-corrected
√v̂) and Lion (Chen et al. 2023, Algorithm 2), as examples of the replay loop:

    python examples/numpy_trace_reader.py results/oracle/traces/adam.npz
    python examples/numpy_trace_reader.py results/oracle/traces/lion.npz --rtol 1e-12

Exit status 0 when every recorded step agrees within ``rtol`` (default: the trace's float64
tolerance), 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Iterator

import numpy as np

Step = Callable[[list[np.ndarray], list[np.ndarray], list[dict], int, dict], None]


def load_trace(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """The trace's metadata (dict) and arrays (name -> float64 array)."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("metadata").tobytes().decode("utf-8"))
    if meta.get("format") != "optverify-trace":
        raise ValueError(f"{path} is not an optverify trace")
    return meta, arrays


def recorded_params(meta: dict, arrays: dict, step: int) -> list[np.ndarray]:
    k = meta["recorded_steps"].index(step)
    return [arrays[f"param/{i}"][k] for i in range(len(meta["shapes"]))]


def recorded_state(meta: dict, arrays: dict, key: str, index: int, step: int) -> np.ndarray:
    layout = meta["states"][key][str(index)]
    if layout == "stacked":
        return arrays[f"state/{key}/{index}"][meta["recorded_steps"].index(step)]
    return arrays[f"state/{key}/{index}@{step}"]


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """max|a - b| / max|b| (the scale floored at 1e-300); inf when ``a`` holds NaN or Inf."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        return float("inf")
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


def replay(meta: dict, arrays: dict, step_fn: Step) -> Iterator[tuple[int, list[np.ndarray]]]:
    """Run ``step_fn(params, grads, states, t, hyper)`` over the trace's gradients; yield the
    parameters after each recorded step."""
    n = len(meta["shapes"])
    params = [arrays[f"init/{i}"].astype(np.float64).copy() for i in range(n)]
    states: list[dict] = [{} for _ in range(n)]
    recorded = set(meta["recorded_steps"])
    for t in range(1, meta["steps"] + 1):
        grads = [arrays[f"grad/{i}"][t - 1] for i in range(n)]
        step_fn(params, grads, states, t, meta)
        if t in recorded:
            yield t, params


def check(meta: dict, arrays: dict, step_fn: Step, rtol: float) -> tuple[bool, int | None, float]:
    """(passed, first failing step or None, largest error) of ``step_fn`` against the trace."""
    worst, first = 0.0, None
    for t, params in replay(meta, arrays, step_fn):
        ref = recorded_params(meta, arrays, t)
        err = max(relative_error(p, r) for p, r in zip(params, ref))
        worst = max(worst, err)
        if not err <= rtol and first is None:  # NaN/inf never pass
            first = t
    return first is None, first, worst


# ----------------------------------------------------------------------------- example implementations
def adam_step(params, grads, states, t, meta):
    """Adam with the reference's conventions, read from the trace's hyperparameters."""
    for i, (p, g) in enumerate(zip(params, grads)):
        h = meta["hyperparameters"][i]
        if (h["eps_placement"], h["weight_decay_timing"], h["decoupled_weight_decay"], h["bias_correction"]) != (
                "torch", "before", True, True):
            raise NotImplementedError("this example implements the default Adam conventions only")
        lr, (b1, b2), eps, wd = h["lr"], h["betas"], h["eps"], h["weight_decay"]
        st = states[i]
        if not st:
            st["m"], st["v"] = np.zeros_like(p), np.zeros_like(p)
        p *= 1.0 - lr * wd
        st["m"] = b1 * st["m"] + (1.0 - b1) * g
        st["v"] = b2 * st["v"] + (1.0 - b2) * g * g
        c1, c2 = 1.0 - b1**t, 1.0 - b2**t
        p -= (lr / c1) * st["m"] / (np.sqrt(st["v"]) / np.sqrt(c2) + eps)


def lion_step(params, grads, states, t, meta):
    """Lion: x <- (1 - ηλ)x - η sign(β1 m + (1-β1) g); m <- β2 m + (1-β2) g."""
    for i, (p, g) in enumerate(zip(params, grads)):
        h = meta["hyperparameters"][i]
        lr, (b1, b2), wd = h["lr"], h["betas"], h["weight_decay"]
        m = states[i].setdefault("m", np.zeros_like(p))
        p *= 1.0 - lr * wd
        p -= lr * np.sign(b1 * m + (1.0 - b1) * g)
        states[i]["m"] = b2 * m + (1.0 - b2) * g


IMPLEMENTATIONS: dict[str, Step] = {"adam": adam_step, "lion": lion_step}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trace")
    parser.add_argument("--rtol", type=float, default=None, help="default: the trace's float64 tolerance")
    args = parser.parse_args(argv)
    meta, arrays = load_trace(args.trace)
    step_fn = IMPLEMENTATIONS.get(meta["reference"])
    if step_fn is None:
        print(f"no example implementation for {meta['reference']!r} (have: {', '.join(IMPLEMENTATIONS)})", file=sys.stderr)
        return 2
    rtol = args.rtol if args.rtol is not None else meta["tolerance"]["float64"]
    passed, first, worst = check(meta, arrays, step_fn, rtol)
    verdict = "PASS" if passed else f"FAIL at step {first}"
    print(f"numpy {meta['reference']} vs {args.trace} ({meta['steps']} steps, rtol {rtol:g}): {verdict}, "
          f"max rel err {worst:.3e}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
