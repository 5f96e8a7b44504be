"""Tables and result files for ``verify memory`` (results/memory/*.json)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import sympy

from .formulas import FORMULAS
from .models import GALORE_RANKS, LLAMA_CONFIGS, model_name, resolve_model
from .paper_tables import all_comparisons
from .totals import GIB, MARS_PER_ELEMENT, mars_totals, model_totals

__all__ = ["algorithms_with_totals", "totals_rows", "format_table", "write_results", "DTYPE_BYTES"]

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4, "fp64": 8}


def algorithms_with_totals() -> list[str]:
    """Registered algorithms with a memory formula, in name order (every class declares its routing)."""
    import algorithms

    return [name for name in sorted(algorithms.REGISTRY) if name in FORMULAS]


def totals_rows(model: str, *, rank: int | None = None, bytes_per_element: int = 2) -> list[dict[str, Any]]:
    cfg = resolve_model(model)
    adam = model_totals("adam", cfg, rank=rank)
    base = adam.state_bytes(bytes_per_element)
    rows = []
    for name in algorithms_with_totals():
        t = model_totals(name, cfg, rank=rank)
        row = t.as_dict(bytes_per_element)
        routing = "2-D (in opt)" if name.startswith("mars") else t.options["rule"]  # MARS routes internally
        row.update(kind="registered", routing=routing,
                   ratio_to_adam_with_projectors=t.state_bytes(bytes_per_element) / base,
                   ratio_to_adam_without_projectors=t.state_bytes(bytes_per_element, projectors=False) / base)
        if name == "adarankgrad":
            row["note"] = "peak: every matrix at max_rank; the time average needs an r_t trace"
        if name == "ldadam":
            row["note"] = "error_feedback = the toolkit's EF state; the official code keeps it in p.grad instead"
        rows.append(row)
    for variant in MARS_PER_ELEMENT:
        for impl in ("official", "minimal"):
            t = mars_totals(variant, cfg, impl)
            row = t.as_dict(bytes_per_element)
            row.update(kind="the official code's counts (docs/methods.md §2.4)", routing="all_2d",
                       algorithm=f"{variant} [{impl}]", ratio_to_adam_with_projectors=t.state_bytes(bytes_per_element) / base,
                       ratio_to_adam_without_projectors=t.state_bytes(bytes_per_element) / base)
            rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]], model: str, bytes_per_element: int) -> str:
    cfg = resolve_model(model)
    head = (f"{model_name(cfg)}: h={cfg.dim} f={cfg.ffn} L={cfg.layers} V={cfg.vocab}, "
            f"P = {rows[0]['parameters']:,} parameters; states at {bytes_per_element} B/element; "
            f"rank {rows[0]['rank']} (GaLore Table 2) unless noted")
    cols = ("algorithm", "routing", "states", "projectors", "EF", "GiB w/o P", "GiB with P", "× Adam", "transient")
    lines = [head, "", f"{cols[0]:<34} {cols[1]:<12} {cols[2]:>15} {cols[3]:>13} {cols[4]:>13} {cols[5]:>9} "
                     f"{cols[6]:>10} {cols[7]:>7} {cols[8]:>12}"]
    for r in rows:
        gib_without = (r["states"]) * bytes_per_element / GIB
        gib_with = (r["states"] + r["projectors"] + r["error_feedback"]) * bytes_per_element / GIB
        transient = f"{r['transient_peak_elements']:,}" if r["kind"] == "registered" else "-"
        lines.append(f"{r['algorithm']:<34} {r['routing']:<12} {r['states']:>15,} {r['projectors']:>13,} "
                     f"{r['error_feedback']:>13,} {gib_without:>9.3f} {gib_with:>10.3f} "
                     f"{r['ratio_to_adam_with_projectors']:>7.3f} {transient:>12}")
    lines += ["", "states: moments, subset accumulators, Fira's scalar (the papers' 'optimizer states'); projectors: bases "
              "and index vectors; EF: LDAdam's error-feedback buffer; GiB w/o P = states only; GiB with P = states + "
              "projectors + EF; × Adam = (states + projectors + EF) / Adam's; transient: peak of documented temporaries in one "
              "step (elements): the largest per-parameter peak, plus every parameter's c_t where MARS's global-norm clip "
              "holds them all at once. Step counters and generator states are bookkeeping and excluded. "
              "Rows marked [official]/[minimal] are the per-element counts (docs/methods.md §2.4) for the authors' MARS code and a minimal "
              "implementation; the registered mars_* rows are this toolkit's."]
    return "\n".join(lines)


def _provenance() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__, "sympy": sympy.__version__, "python": platform.python_version()}


def write_results(out_dir: str | Path, *, bytes_per_element: int = 2) -> list[Path]:
    """Write ``model_totals.json`` (every LLaMA config × algorithm) and ``paper_comparison.json``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    totals = {
        "description": "Optimizer-state totals from the sympy formulas of verify/memory/formulas.py, per LLaMA "
                       "config (docs/memory.md §2) and algorithm, routed as each paper did (the Routing declared on each optimizer class, "
                       "through algorithms.grouping.paper_param_groups on the model built on the meta device).",
        "bytes_per_element": bytes_per_element,
        "ranks": GALORE_RANKS,
        "provenance": _provenance(),
        "models": {name: totals_rows(name, bytes_per_element=bytes_per_element) for name in LLAMA_CONFIGS},
    }
    comparison = all_comparisons()
    comparison["provenance"] = _provenance()
    paths = []
    for fname, payload in (("model_totals.json", totals), ("paper_comparison.json", comparison)):
        path = out / fname
        path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")
        paths.append(path)
    return paths
