"""The oracle of every fast path (``fast=True`` / ``"compile"``) against the float64 reference, on a device.

CI proves each fast path equal to the reference path in float64 on the CPU (tests/test_fast_path.py).
On a GPU the fast path runs other kernels (cuBLAS/cuSOLVER batched calls, multi-tensor kernels,
inductor's fused code), so this module runs :func:`verify.oracle.compare` there: the candidate is the
fast path in ``dtype`` (float32 by default) on ``device``, the reference the float64 reference path on the
same device, both on :data:`SHAPES` (the oracle's default shapes — tall, wide, square, 3-D, vector, scalar —
with the matrices and the vector repeated, so that the projected methods' fast paths form stacks of
several matrices next to stacks of one), the low-rank gradient stream, weight decay 0.1 where the class
takes it and ranks fitted to the shapes, for ``steps`` steps with the refresh period set to ``refresh``
so that several refreshes happen.

Float32 against float64 is not exact: the oracle's float32 tolerance is 1e-5 relative. For each method
the same comparison is also run with the *reference path* in float32 as the candidate (the baseline).
The verdict of a method:

``PASS``        the fast path matches within the tolerance at every step;
``AS_REFERENCE``  the fast path fails, and so does the float32 reference path, at the same or an earlier step,
                and the fast path's largest error is at most ``ERROR_RATIO`` times the baseline's (float32 is
                not enough for this method on this problem — sign decisions, ill-conditioned bases — and the
                fast path is no worse than the reference path);
``FAIL``        anything else: the fast path fails where the float32 reference path passes, fails earlier,
                or its error is larger by more than ``ERROR_RATIO``.

Run: ``python -m verify.fast_oracle --device cuda --json OUT.json --markdown OUT_MD`` (scripts/device_fast.sh, part
``oracle``).
"""

from __future__ import annotations

import inspect
import json
import time
import warnings
from typing import Any, Iterable

import torch

import algorithms

from .oracle import compare
from .oracle.settings import REFRESH_KEYS, names_parameter

__all__ = ["run", "markdown", "main", "VERDICTS"]

VERDICTS = ("PASS", "AS_REFERENCE", "FAIL")
#: the oracle's default shapes with repeats (stacks of 3, 2 and 1 matrices)
SHAPES = ((24, 16), (16, 24), (20, 20), (24, 16), (4, 3, 5), (17,), (20, 20), (24, 16), (17,), ())
#: how much larger than the float32 reference path's error the fast path's may be under AS_REFERENCE
ERROR_RATIO = 10.0


def _factory(name: str, fast: bool | str):
    """``(params, **kwargs) -> algorithms.make(name, params, fast=fast, **kwargs)`` with the class's signature (so the
    oracle fits and passes the same ranks to both sides)."""
    cls = algorithms.REGISTRY[name]

    def make(params, **kwargs):
        return algorithms.make(name, params, fast=fast, **kwargs)

    signature = inspect.signature(cls)
    make.__signature__ = signature.replace(parameters=[p for n, p in signature.parameters.items() if n != "fast"])
    make.__name__ = f"{name}[fast={fast!r}]"
    return make


def _summary(report) -> dict[str, Any]:
    errors = [e for e in report.param_err if e is not None]
    return {"passed": report.passed, "max_param_error": max(errors) if errors else None,
            "first_failure_step": report.first_failure,
            "first_failure": report.failure.describe() if report.failure else None}


def check(name: str, *, fast: bool | str = True, device: str = "cuda", dtype: torch.dtype = torch.float32,
          steps: int = 60, refresh: int = 10) -> dict[str, Any]:
    """The fast path and the baseline (reference path in ``dtype``) of one method against its float64 reference."""
    cls = algorithms.REGISTRY[name]
    kwargs = {key: refresh for key in REFRESH_KEYS if names_parameter(cls, key)}
    row: dict[str, Any] = {"optimizer": name, "mode": fast, "kwargs": kwargs}
    for side, mode in (("fast", fast), ("reference", False)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = compare(name, _factory(name, mode), kwargs=kwargs, dtype=dtype, device=device, steps=steps,
                             shapes=SHAPES, candidate_name=f"{name} (fast={mode!r})")
        row[side] = {**_summary(report), "seconds": time.perf_counter() - t0}
    row["verdict"] = verdict(row["fast"], row["reference"])
    return row


def verdict(fast: dict[str, Any], reference: dict[str, Any]) -> str:
    """PASS / AS_REFERENCE / FAIL (module docstring) from the fast path's and the baseline's summaries."""
    if fast["passed"]:
        return "PASS"
    if (not reference["passed"] and fast["first_failure_step"] is not None
            and reference["first_failure_step"] <= fast["first_failure_step"]
            and fast["max_param_error"] is not None and reference["max_param_error"] is not None
            and fast["max_param_error"] <= ERROR_RATIO * reference["max_param_error"]):
        return "AS_REFERENCE"
    return "FAIL"


def run(device: str = "cuda", *, names: Iterable[str] | None = None, modes: Iterable[bool | str] = (True,),
        dtype: torch.dtype = torch.float32, steps: int = 60, refresh: int = 10) -> dict[str, Any]:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("fast oracle: no CUDA device here (torch.cuda.is_available() is False)")
    torch.backends.cuda.matmul.allow_tf32 = False
    rows = []
    for name in names or sorted(algorithms.REGISTRY):
        for mode in modes:
            try:
                rows.append(check(name, fast=mode, device=device, dtype=dtype, steps=steps, refresh=refresh))
            except Exception as exc:  # an error is a row with its reason, never a silent omission
                rows.append({"optimizer": name, "mode": mode, "verdict": "FAIL",
                             "error": f"{type(exc).__name__}: {exc}"})
    meta = {"device": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu", "torch": torch.__version__,
            "dtype": str(dtype).replace("torch.", ""), "steps": steps, "refresh": refresh,
            "reference": "float64 reference path (fast=False) on the same device", "tf32": False}
    return {"meta": meta, "rows": rows, "counts": {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}}


def _fmt(value) -> str:
    return f"{value:.1e}" if isinstance(value, float) else "—"


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [f"# Fast paths against the float64 reference ({meta['device']}, torch {meta['torch']})", "",
             f"Candidate: the fast path in {meta['dtype']}; reference: the {meta['reference']}; {meta['steps']} steps, "
             f"refresh period {meta['refresh']}, the shapes of verify/fast_oracle.py. Baseline: the "
             f"reference path in {meta['dtype']} against the same float64 reference.", "",
             "| optimizer | fast= | verdict | fast: max param error | fast: first failure | "
             f"reference in {meta['dtype']}: max param error | its first failure |", "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['optimizer']} | {r['mode']!r} | FAIL | {r['error']} ||||")
            continue
        f, b = r["fast"], r["reference"]
        lines.append(f"| {r['optimizer']} | {r['mode']!r} | {r['verdict']} | {_fmt(f['max_param_error'])} | "
                     f"{f['first_failure_step'] or '—'} | {_fmt(b['max_param_error'])} | {b['first_failure_step'] or '—'} |")
    lines += ["", "Counts: " + ", ".join(f"{k} {v}" for k, v in result["counts"].items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m verify.fast_oracle", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--names", default=None, help="comma-separated registry names (default: all)")
    ap.add_argument("--modes", default="fast", help="fast and/or compile (comma-separated)")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--refresh", type=int, default=10)
    ap.add_argument("--json", required=True)
    ap.add_argument("--markdown")
    args = ap.parse_args(argv)
    modes = [{"fast": True, "compile": "compile"}[m] for m in args.modes.split(",") if m]
    result = run(args.device, names=args.names.split(",") if args.names else None, modes=modes,
                 dtype=getattr(torch, args.dtype), steps=args.steps, refresh=args.refresh)
    with open(args.json, "w") as fh:
        json.dump(result, fh, indent=1)
    text = markdown(result)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(text)
    print(text)
    return 0 if result["counts"]["FAIL"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
