"""Golden traces: a float64 reference run, recorded so that any framework can check itself against it.

A trace is one ``.npz`` file (numpy's zip of ``.npy`` arrays; readable by numpy alone, by C++ with
cnpy/xtensor, by JAX through numpy). Arrays, all float64:

=============================  ==============================================================
``metadata``                   uint8: UTF-8 JSON (below)
``init/<i>``                   parameter ``i`` before the first step, ``shape_i``
``grad/<i>``                   the gradient stream, ``[steps, *shape_i]`` (row ``t-1`` = step t)
``param/<i>``                  parameters after each recorded step, ``[len(recorded_steps), *shape_i]``
``state/<key>/<i>``            a state tensor after each recorded step, stacked like ``param/<i>``
``state/<key>/<i>@<t>``        ... or one array per recorded step ``t`` when its shape changes over
                               the run (e.g. AdaRankGrad's moments when its rank adapts)
=============================  ==============================================================

The metadata holds everything needed to rerun the step without optverify: the reference's registry
name, class and paper, its effective hyperparameters per parameter (``hyperparameters``, one dict per
parameter, with the variant's conventions resolved), the keyword arguments it was built with, the
values the oracle filled in (``filled``), shapes and parameter names, seeds, the gradient stream's
kind and constants, ``steps``, ``recorded_steps``, the state keys and their layout, the recommended
tolerances per dtype, and the versions that wrote it. Only open-loop streams can be traced (a
closed-loop gradient depends on the candidate's own iterate).

``examples/numpy_trace_reader.py`` reads a trace and checks a pure-numpy Adam and Lion against it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

from . import gradients as gradient_module
from .candidates import build_candidate, candidate_label, load_candidate
from .compare import build_reference, check_reference_name, hints_for
from .engine import ReferenceSide, run_comparison
from .errors import OracleInputError
from .gradients import OPEN_LOOP, GradientStream
from .groups import build_groups, parse_groups
from .hyperparams import _jsonable, diff_hyperparameters, effective_hyperparameters
from .problem import DEFAULT_SHAPES, check_shapes, initial_values, param_names
from .report import OracleReport
from .settings import DEFAULT_RTOL, accepts, auto_steps, names_parameter, resolve_dtype_rtol, resolve_kwargs

__all__ = ["FORMAT", "VERSION", "Trace", "write_trace", "read_trace", "check_trace"]

FORMAT = "optverify-trace"
VERSION = 1


def _anything(params, **kwargs):  # the unknown candidate of a trace: accepts every keyword
    return None


def _float_state(state: dict[str, Any], keys: Sequence[str] | None) -> dict[str, np.ndarray]:
    out = {}
    for k, v in state.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and (keys is None or k in keys):
            out[k] = v.detach().to("cpu", torch.float64).numpy().copy()
    return out


def write_trace(
    reference: str,
    path: str | os.PathLike,
    *,
    kwargs: dict[str, Any] | None = None,
    reference_groups: str | Sequence[dict[str, Any]] | None = None,
    shapes: Sequence[Sequence[int]] | None = None,
    steps: int | None = None,
    gradients: str = "lowrank",
    seed: int = 0,
    record: Sequence[int] | None = None,
    states: Sequence[str] | None = None,
    periods: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Run the float64 reference and write its trace to ``path`` (``.npz``); returns the metadata.

    ``kwargs``: the reference's hyperparameters (the exercised weight decay and fitted ranks are
    filled in as by :func:`compare`, and listed in the metadata). ``record``: the steps whose
    parameters and states are stored (default: every step). ``states``: the state keys stored
    (default: every floating-point state tensor). ``periods``: the gradient stream's schedule periods
    (:class:`verify.oracle.gradients.GradientStream`)."""
    reference_cls = check_reference_name(reference)
    if gradients not in OPEN_LOOP:
        raise OracleInputError(f"gradients: a trace needs an open-loop stream ({', '.join(OPEN_LOOP)}); "
                               f"{gradients!r} depends on the candidate's own iterate")
    shapes = check_shapes(DEFAULT_SHAPES if shapes is None else shapes)
    names = param_names(shapes)
    spec = parse_groups(reference_groups, "reference groups")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise OracleInputError(f"--kwargs: expected a JSON object, got {type(kwargs).__name__}")
    resolved = resolve_kwargs(reference_cls, _anything, shapes, kwargs=dict(kwargs or {}), reference_kwargs={},
                              candidate_kwargs={}, reference_groups=spec, candidate_groups=None)
    params = [x.clone().requires_grad_() for x in initial_values(shapes, seed, torch.float64)]
    init = [p.detach().numpy().copy() for p in params]
    arg, group_notes = build_groups(spec, params, shapes, names, "reference groups")
    opt = build_reference(reference, arg, resolved.reference_kwargs)
    notes = list(resolved.notes)
    if steps is None:
        steps, why = auto_steps(opt.param_groups)
        notes.append(why)
    elif isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise OracleInputError(f"steps must be an int >= 1, got {steps!r}")
    recorded = sorted(set(range(1, steps + 1) if record is None else record))
    if not recorded or recorded[0] < 1 or recorded[-1] > steps:
        raise OracleInputError(f"record: steps must lie in 1..{steps}, got {list(record or [])}")
    stream = GradientStream(gradients, shapes, seed, periods)
    grads: list[list[np.ndarray]] = [[] for _ in shapes]
    snapshots: list[list[np.ndarray]] = [[] for _ in shapes]
    state_snaps: dict[str, dict[int, dict[int, np.ndarray]]] = {}
    for t in range(1, steps + 1):
        g = stream.gradients(t)
        for i, (p, gi) in enumerate(zip(params, g)):
            p.grad = gi.clone()
            grads[i].append(gi.numpy().copy())
        opt.step()
        if not all(bool(torch.isfinite(p).all()) for p in params):
            raise OracleInputError(f"reference: {reference} produced non-finite parameters at step {t}")
        if t in recorded:
            for i, p in enumerate(params):
                snapshots[i].append(p.detach().numpy().copy())
                for k, v in _float_state(opt.state.get(p, {}), states).items():
                    state_snaps.setdefault(k, {}).setdefault(i, {})[t] = v
    if states is not None:
        missing = sorted(set(states) - set(state_snaps))
        if missing:
            raise OracleInputError(f"states: the reference has no state {missing}; it has {sorted(state_snaps)}")
    arrays: dict[str, np.ndarray] = {}
    layout: dict[str, dict[str, str]] = {}
    for i in range(len(shapes)):
        arrays[f"init/{i}"] = init[i]
        arrays[f"grad/{i}"] = np.stack(grads[i])
        arrays[f"param/{i}"] = np.stack(snapshots[i])
    for key, per_param in state_snaps.items():
        layout[key] = {}
        for i, per_step in per_param.items():
            if sorted(per_step) != recorded:
                raise OracleInputError(f"states: {key!r} of {names[i]} is not present at every recorded step")
            if len({v.shape for v in per_step.values()}) == 1:
                arrays[f"state/{key}/{i}"] = np.stack([per_step[t] for t in recorded])
                layout[key][str(i)] = "stacked"
            else:
                for t in recorded:
                    arrays[f"state/{key}/{i}@{t}"] = per_step[t]
                layout[key][str(i)] = "per_step"
    hyper = [effective_hyperparameters(opt, p, reference_cls, resolved.reference_kwargs) for p in params]
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "reference": reference,
        "class": f"{reference_cls.__module__}.{reference_cls.__qualname__}",
        "paper": getattr(reference_cls, "paper", ""),
        "hyperparameters": [{k: _jsonable(v) for k, v in h.items()} for h in hyper],
        "reference_kwargs": {k: _jsonable(v) for k, v in resolved.reference_kwargs.items()},
        "common_kwargs": {k: _jsonable(v) for k, v in {**(kwargs or {}), **{k: v for k, (v, where) in
                                                                             resolved.filled.items() if where == "both"}}.items()},
        "filled": {k: {"value": _jsonable(v), "sides": where} for k, (v, where) in resolved.filled.items()},
        "reference_groups": spec,
        "settings": notes + group_notes,
        "dtype": "float64",
        "seed": seed,
        "shapes": [list(s) for s in shapes],
        "param_names": names,
        "gradients": gradients,
        "gradient_stream": {
            "kind": gradients,
            "seed": seed,
            "constants": {k: getattr(gradient_module, k) for k in ("AMPLITUDE_SPAN", "DECAY_RANGE", "TAIL", "WOBBLE")},
            "periods": stream.periods,
            "note": "stored explicitly in grad/<i>; the constants only document how it was drawn",
        },
        "steps": steps,
        "recorded_steps": recorded,
        "states": layout,
        "tolerance": {str(k).replace("torch.", ""): v for k, v in DEFAULT_RTOL.items()},
        "relative_error": "max|candidate - reference| / max|reference| per parameter and state tensor",
        "written_by": {"optverify": _version(), "torch": torch.__version__, "numpy": np.__version__},
    }
    arrays["metadata"] = np.frombuffer(json.dumps(metadata, indent=1, allow_nan=False).encode(), dtype=np.uint8)
    path = os.fspath(path)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as fh:  # a file object: numpy would append .npz to a path without it
        np.savez_compressed(fh, **arrays)
    return metadata


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("optverify")
    except Exception:
        return "unknown"


@dataclass
class Trace:
    path: str
    metadata: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def recorded_steps(self) -> list[int]:
        return self.metadata["recorded_steps"]

    def gradient(self, step: int, index: int) -> np.ndarray:
        return np.asarray(self.arrays[f"grad/{index}"][step - 1])

    def params(self, step: int, index: int) -> np.ndarray:
        return np.asarray(self.arrays[f"param/{index}"][self.recorded_steps.index(step)])

    def state(self, step: int, index: int) -> dict[str, np.ndarray]:
        out = {}
        for key, per_param in self.metadata["states"].items():
            layout = per_param.get(str(index))
            if layout == "stacked":
                out[key] = np.asarray(self.arrays[f"state/{key}/{index}"][self.recorded_steps.index(step)])
            elif layout == "per_step":
                out[key] = self.arrays[f"state/{key}/{index}@{step}"]
        return out


def read_trace(path: str | os.PathLike) -> Trace:
    """Load a trace (numpy only; no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise OracleInputError(f"--trace: cannot read {os.fspath(path)!r} as a trace (.npz): {exc}") from None
    if "metadata" not in arrays:
        raise OracleInputError(f"--trace: {os.fspath(path)!r} has no metadata; not an optverify trace")
    metadata = json.loads(arrays.pop("metadata").tobytes().decode())
    if metadata.get("format") != FORMAT or metadata.get("version") != VERSION:
        raise OracleInputError(f"--trace: {os.fspath(path)!r} is not an {FORMAT} version {VERSION} file")
    return Trace(os.fspath(path), metadata, arrays)


class TraceReference(ReferenceSide):
    def __init__(self, trace: Trace, device) -> None:
        self.trace, self.device = trace, device
        self._recorded = set(trace.recorded_steps)

    def step(self, step: int, grads) -> None:
        pass

    def values(self, step: int) -> list[torch.Tensor] | None:
        if step not in self._recorded:
            return None
        return [torch.from_numpy(np.array(self.trace.params(step, i), dtype=np.float64)).to(self.device)
                for i in range(len(self.trace.metadata["shapes"]))]

    def state(self, step: int, index: int) -> dict[str, Any]:
        if step not in self._recorded:
            return {}
        return {k: torch.from_numpy(np.array(v, dtype=np.float64)).to(self.device) for k, v in self.trace.state(step, index).items()}


def check_trace(
    trace: str | os.PathLike | Trace,
    candidate: Callable[..., torch.optim.Optimizer] | str,
    *,
    kwargs: dict[str, Any] | None = None,
    candidate_kwargs: dict[str, Any] | None = None,
    candidate_groups: str | Sequence[dict[str, Any]] | None = None,
    dtype: torch.dtype | None = None,
    rtol: float | None = None,
    strict: bool = False,
    state_map: dict[str, str] | None = None,
    device: str | torch.device = "cpu",
    candidate_name: str | None = None,
    stub_missing: Sequence[str] = (),
) -> OracleReport:
    """Replay a trace's gradients into ``candidate`` and compare with the recorded reference.

    The candidate gets the trace's common keyword arguments (the user's at trace time and the
    oracle's filled-in weight decay) where its constructor accepts them, then ``kwargs`` and
    ``candidate_kwargs``."""
    trace = trace if isinstance(trace, Trace) else read_trace(trace)
    meta = trace.metadata
    if isinstance(candidate, str):
        candidate_name = candidate_name or candidate
        candidate = load_candidate(candidate, stub_missing=stub_missing)
    label = candidate_name or candidate_label(candidate)
    dtype, rtol = resolve_dtype_rtol(dtype, rtol, strict)
    shapes = tuple(tuple(s) for s in meta["shapes"])
    names = meta["param_names"]
    spec = parse_groups(candidate_groups, "candidate groups")
    given = {**(kwargs or {}), **(candidate_kwargs or {})}
    group_keys = {k for g in spec or () for k in g}
    settings = []
    inherited = {}
    for k, v in meta["common_kwargs"].items():
        if k in given or k in group_keys:
            continue
        if accepts(candidate, k):
            inherited[k] = tuple(v) if isinstance(v, list) else v
        else:
            settings.append(f"the trace's {k}={v!r} was not passed: the candidate does not accept {k}")
    for k, info in meta["filled"].items():
        if info["sides"] == "reference" and k not in given and k not in group_keys and names_parameter(candidate, k):
            inherited[k] = info["value"]
    cand_kw = {**inherited, **given}
    if inherited:
        settings.append("from the trace: " + ", ".join(f"{k}={v!r}" for k, v in inherited.items()))
    settings.extend(f"trace: {note}" for note in meta.get("settings", []))
    init = [torch.from_numpy(np.array(trace.arrays[f"init/{i}"], dtype=np.float64)) for i in range(len(shapes))]
    cand_params = [x.to(device=device, dtype=dtype).requires_grad_() for x in init]
    arg, notes = build_groups(spec, cand_params, shapes, names, "candidate groups")
    settings.extend(notes)
    cand_opt = build_candidate(candidate, arg, cand_kw, label)
    cand_h = [effective_hyperparameters(cand_opt, p, candidate, cand_kw) for p in cand_params]
    ref_h = [{k: tuple(v) if isinstance(v, list) else v for k, v in h.items()} for h in meta["hyperparameters"]]
    reference = meta["reference"]
    try:
        reference_cls = check_reference_name(reference)
        hints = hints_for(reference_cls, ref_h[0], set(meta["reference_kwargs"]) - set(meta["filled"]),
                          {k: (v["value"], v["sides"]) for k, v in meta["filled"].items()})
    except OracleInputError:  # a trace written by another version's registry
        hints = []
    report = OracleReport(
        reference=reference, candidate=label, dtype=str(dtype).replace("torch.", ""), steps=meta["steps"],
        gradients=meta["gradients"], rtol=rtol, seed=meta["seed"], shapes=list(shapes), param_names=names,
        settings=settings, state_map=dict(state_map or {}), hyperparameters=diff_hyperparameters(ref_h, cand_h, names),
        hints=hints, trace=trace.path,
    )

    def next_gradients(step: int):
        cand = [torch.from_numpy(np.array(trace.gradient(step, i), dtype=np.float64)).to(device=device, dtype=dtype)
                for i in range(len(shapes))]
        return None, cand

    return run_comparison(report, ref=TraceReference(trace, device), cand_opt=cand_opt, cand_params=cand_params,
                          next_gradients=next_gradients, steps=meta["steps"], state_map=report.state_map)


# ----------------------------------------------------------------------------- the committed traces
#: small shapes for the committed traces (every kind of parameter, ~150 numbers per step)
GOLDEN_SHAPES: tuple[tuple[int, ...], ...] = ((8, 6), (6, 8), (6, 6), (2, 2, 3), (5,), ())
GOLDEN_STEPS = 24
#: the paper defaults the committed traces change, so that the files stay small and every path runs:
#: a refresh every 8 steps (three refreshes in 24 steps) and ranks that fit 6-wide matrices
GOLDEN_OVERRIDES = {"update_proj_gap": 8, "max_steps_per_subspace": 8, "rank": 2, "max_rank": 4}
#: the stream's periods scaled to the 8-step refresh: the energy rank alternates between refreshes
#: (top at steps 1 and 17, bottom at 9), the subspace jumps at steps 12 and 23, the norm swings twice
GOLDEN_PERIODS = {"amplitude": 12, "decay": 16, "jump": 11}


def golden_kwargs(reference_cls: type) -> dict[str, Any]:
    """The overrides of :data:`GOLDEN_OVERRIDES` that ``reference_cls``'s constructor takes."""
    return {k: v for k, v in GOLDEN_OVERRIDES.items() if names_parameter(reference_cls, k)}


def write_golden_traces(out_dir: str | os.PathLike) -> list[str]:
    """One trace per registered optimizer at its paper defaults (plus :data:`GOLDEN_OVERRIDES`, the
    oracle's weight decay 0.1), on :data:`GOLDEN_SHAPES` for :data:`GOLDEN_STEPS` steps of the low-rank
    stream with :data:`GOLDEN_PERIODS`, and an
    ``index.json`` (file, size, sha256, settings). Returns one line per file."""
    import hashlib

    import algorithms

    os.makedirs(out_dir, exist_ok=True)
    index, lines = {}, []
    for name in sorted(algorithms.REGISTRY):
        path = os.path.join(out_dir, f"{name}.npz")
        kwargs = golden_kwargs(algorithms.REGISTRY[name])
        meta = write_trace(name, path, kwargs=kwargs, shapes=GOLDEN_SHAPES, steps=GOLDEN_STEPS, periods=GOLDEN_PERIODS)
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        size = os.path.getsize(path)
        index[name] = {"file": f"{name}.npz", "bytes": size, "sha256": digest, "kwargs": kwargs,
                       "settings": meta["settings"], "states": sorted(meta["states"])}
        lines.append(f"{path}: {size / 1024:.1f} KiB, states {sorted(meta['states'])}")
    with open(os.path.join(out_dir, "index.json"), "w") as fh:
        json.dump({"shapes": [list(s) for s in GOLDEN_SHAPES], "steps": GOLDEN_STEPS, "gradients": "lowrank",
                   "seed": 0, "periods": GOLDEN_PERIODS, "overrides": GOLDEN_OVERRIDES, "traces": index}, fh, indent=1)
        fh.write("\n")
    total = sum(v["bytes"] for v in index.values())
    lines.append(f"{len(index)} traces, {total / 1024:.1f} KiB in all")
    return lines
