"""Recipes: third-party optimizers checked against the references as shipped, with the right settings.

Each :class:`Recipe` is one ``verify oracle`` run (its command line is :meth:`Recipe.command`) with
the verdict it must give and why: PASS where the implementation agrees, or FAIL at the step where a
known deviation first acts. They are the documented way to run these packages through the oracle,
the ``crosscheck`` tests (tests/crosscheck/test_oracle_recipes.py) and the committed report::

    python -m verify.oracle.recipes --out results/oracle     # thirdparty.md + thirdparty.json

Packages: torch (AdamW, Adagrad), galore-torch 1.0, fira 1.0.2, pytorch-optimizer 4.1.0 and
lion-pytorch 0.2.5 (``make crosscheck`` installs them). galore-torch and fira import
``transformers`` (for a version assertion) and galore-torch also ``bitsandbytes`` (for its 8-bit
class); their recipes pass ``--stub-missing transformers,bitsandbytes`` (see
:mod:`verify.oracle.candidates`), so neither needs to be installed.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shlex
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from .compare import compare
from .report import OracleReport

__all__ = ["Recipe", "RECIPES", "available", "run_recipe", "write_report"]

MOMENTS = {"exp_avg": "exp_avg", "exp_avg_sq": "exp_avg_sq"}
STUBS = ("transformers", "bitsandbytes")
#: the third parties' projected groups: matrices in a group with ``rank`` (their rule), the rest plain
GALORE_GROUPS = [{"params": "matrices", "rank": 4, "update_proj_gap": 200, "scale": 1.0, "proj_type": "std"},
                 {"params": "rest"}]
FIRA_GROUPS = [{"params": "matrices", "rank": 4, "update_proj_gap": 200, "alpha": 1.0, "proj_type": "std"},
               {"params": "rest"}]
PO_GROUPS = [{"params": "matrices", "rank": 4, "update_proj_gap": 200, "scale": 1.0, "projection_type": "std"},
             {"params": "rest"}]


@dataclass(frozen=True)
class Recipe:
    """One oracle run of a third-party implementation and the verdict it must give."""

    id: str
    implementation: str
    distribution: str  # the installed package whose version is reported ("torch", "galore-torch", ...)
    reference: str
    candidate: str
    cause: str  # why the verdict is what it is
    expect_step: int | None = None  # None: PASS; else the step of the first failure
    kwargs: dict[str, Any] = field(default_factory=dict)
    reference_kwargs: dict[str, Any] = field(default_factory=dict)
    candidate_kwargs: dict[str, Any] = field(default_factory=dict)
    groups: list[dict[str, Any]] | None = None
    state_map: dict[str, str] = field(default_factory=dict)
    dtype: str = "float32"
    strict: bool = False
    stub_missing: tuple[str, ...] = ()
    explains: tuple[str, ...] = ()  # what the report must say (a first-try failure's defaults diff)

    @property
    def module(self) -> str:
        return self.candidate.split(":")[0].split(".")[0]

    def options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`verify.oracle.compare`."""
        return dict(kwargs=self.kwargs, reference_kwargs=self.reference_kwargs, candidate_kwargs=self.candidate_kwargs,
                    candidate_groups=self.groups, state_map=self.state_map, strict=self.strict,
                    dtype=None if self.strict else getattr(torch, self.dtype), stub_missing=self.stub_missing,
                    candidate_name=self.candidate)

    def argv(self) -> list[str]:
        """The ``verify oracle`` arguments of this recipe."""
        argv = ["oracle", "--reference", self.reference, "--candidate", self.candidate]
        if self.stub_missing:
            argv += ["--stub-missing", ",".join(self.stub_missing)]
        for flag, value in (("--kwargs", self.kwargs), ("--reference-kwargs", self.reference_kwargs),
                            ("--candidate-kwargs", self.candidate_kwargs)):
            if value:
                argv += [flag, json.dumps(value)]
        if self.groups is not None:
            argv += ["--groups", json.dumps(self.groups)]
        if self.state_map:
            argv += ["--state-map", ",".join(f"{k}={v}" for k, v in self.state_map.items())]
        if self.strict:
            argv += ["--strict"]
        elif self.dtype != "float32":
            argv += ["--dtype", self.dtype]
        return argv

    def command(self) -> str:
        return "verify " + " ".join(shlex.quote(a) for a in self.argv())


def _adamw_rows() -> list[Recipe]:
    rows = []
    modes = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    for dtype in ("float64", "float32", "bfloat16", "float16"):
        for mode, kw in modes.items():
            expect, cause = None, "agrees to the dtype's round-off (torch.optim.AdamW is adam's decoupled-decay convention)"
            if dtype == "bfloat16":
                expect = 8
                cause = ("bfloat16 parameters and moments: every store rounds to 8 significant bits (unit round-off "
                         "2^-9), which accumulates past the bfloat16 tolerance 2e-2 (first in the scalar's exp_avg). "
                         "Precision, not a bug")
            elif dtype == "float16" and mode != "fused":
                expect = 1
                cause = ("Inf at step 1: (1-β2)g² underflows to 0 in float16 and ε = 1e-8 rounds to 0, so m/(√v + ε) "
                         "divides by zero wherever the gradient is small. A real float16 hazard of the eager kernels")
            elif dtype == "float16":
                expect = 2
                cause = ("the fused kernel computes in float32 but stores exp_avg_sq = (1-β2)g² in float16, where it is "
                         "subnormal (< 6.1e-5, few significant bits) for |g| < 0.25: the next step's denominator is off "
                         "by more than the float16 tolerance 2e-3")
            rows.append(Recipe(
                id=f"torch-adamw-{mode}-{dtype}", implementation=f"torch.optim.AdamW ({mode}, {dtype})",
                distribution="torch", reference="adam", candidate="torch.optim:AdamW", candidate_kwargs=kw,
                state_map=MOMENTS, dtype=dtype, expect_step=expect, cause=cause))
    return rows


RECIPES: list[Recipe] = [
    *_adamw_rows(),
    Recipe(
        id="torch-adagrad-defaults", implementation="torch.optim.Adagrad, defaults", distribution="torch",
        reference="adagrad_coordinate", candidate="torch.optim:Adagrad", expect_step=1,
        explains=("eps: reference 0.0, candidate 1e-10", "b0=0.01", "initial_accumulator_value=0"),
        cause="first try: torch's ε = 1e-10 after √sum and accumulator start 0, against the reference's paper "
              "variant (b0 = 1e-2 inside the root, ε = 0), and the oracle's weight decay (coupled in torch); the "
              "report lists eps, b0 and initial_accumulator_value"),
    Recipe(
        id="torch-adagrad", implementation="torch.optim.Adagrad", distribution="torch",
        reference="adagrad_coordinate", candidate="torch.optim:Adagrad", kwargs={"lr": 0.01, "weight_decay": 0.0},
        reference_kwargs={"b0": 0.0, "eps": 1e-10}, state_map={"sum_sq": "sum"},
        cause="b0 = 0 (torch's initial_accumulator_value = b0²) and ε = 1e-10 after the root: identical"),
    Recipe(
        id="torch-adagrad-decay", implementation="torch.optim.Adagrad, weight_decay 0.1", distribution="torch",
        reference="adagrad_coordinate", candidate="torch.optim:Adagrad", kwargs={"lr": 0.01},
        reference_kwargs={"b0": 0.0, "eps": 1e-10}, state_map={"sum_sq": "sum"}, expect_step=1,
        cause="torch adds λx to the gradient (coupled L2, enters the accumulator); the reference decays after the "
              "update (decoupled, the authors' code). Use weight_decay=0 to compare the rest"),
    Recipe(
        id="galore-torch-defaults", implementation="galore-torch 1.0 GaLoreAdamW, defaults", distribution="galore-torch",
        reference="galore_adamw", candidate="galore_torch:GaLoreAdamW", stub_missing=STUBS,
        candidate_kwargs={"no_deprecation_warning": True}, groups=GALORE_GROUPS, expect_step=1,
        explains=("lr: reference 0.01, candidate 0.001", "eps: reference 1e-08, candidate 1e-06",
                  "scale: reference 0.25, candidate 1.0", "variant='official' reproduces"),
        cause="first try against variant='paper': lr 1e-2 vs 1e-3, ε 1e-8 vs 1e-6 (HF, not bias-corrected), α 0.25 "
              "vs 1, decay before vs after; the report lists them and points at variant='official'"),
    Recipe(
        id="galore-torch", implementation="galore-torch 1.0 GaLoreAdamW", distribution="galore-torch",
        reference="galore_adamw", candidate="galore_torch:GaLoreAdamW", stub_missing=STUBS,
        reference_kwargs={"variant": "official", "rank": 4, "scale": 1.0}, candidate_kwargs={"no_deprecation_warning": True},
        groups=GALORE_GROUPS, state_map=MOMENTS,
        cause="variant='official' reproduces it: HF ε (1e-6, uncorrected √v), decay after the update, float32 SVD"),
    Recipe(
        id="galore-torch-strict", implementation="galore-torch 1.0 GaLoreAdamW (float64)", distribution="galore-torch",
        reference="galore_adamw", candidate="galore_torch:GaLoreAdamW", stub_missing=STUBS,
        reference_kwargs={"variant": "official", "rank": 4, "scale": 1.0}, candidate_kwargs={"no_deprecation_warning": True},
        groups=GALORE_GROUPS, state_map=MOMENTS, strict=True,
        cause="float64 to 1e-10: both take the same float32 SVD of the same gradient"),
    Recipe(
        id="fira", implementation="fira 1.0.2 FiraAdamW (α = 1)", distribution="fira",
        reference="fira_adamw", candidate="fira:FiraAdamW", stub_missing=STUBS,
        reference_kwargs={"variant": "official", "rank": 4, "scale": 1.0}, candidate_kwargs={"no_deprecation_warning": True},
        groups=FIRA_GROUPS, state_map={**MOMENTS, "residual_norm": "scaling_grad"},
        cause="variant='official' reproduces it, including the limiter on the uncorrected ratio"),
    Recipe(
        id="fira-alpha", implementation="fira 1.0.2 FiraAdamW (α = 0.25)", distribution="fira",
        reference="fira_adamw", candidate="fira:FiraAdamW", stub_missing=STUBS,
        reference_kwargs={"variant": "official", "rank": 4, "scale": 0.25}, candidate_kwargs={"no_deprecation_warning": True},
        groups=[{**FIRA_GROUPS[0], "alpha": 0.25}, FIRA_GROUPS[1]], state_map={**MOMENTS, "residual_norm": "scaling_grad"},
        cause="variant='official' has the code's residual S = G − αPR (α not applied to S)"),
    Recipe(
        id="fira-alpha-paper-residual", implementation="fira 1.0.2 FiraAdamW (α = 0.25) vs the paper's residual",
        distribution="fira", reference="fira_adamw", candidate="fira:FiraAdamW", stub_missing=STUBS,
        reference_kwargs={"variant": "official", "rank": 4, "scale": 0.25, "residual_form": "paper"},
        candidate_kwargs={"no_deprecation_warning": True}, groups=[{**FIRA_GROUPS[0], "alpha": 0.25}, FIRA_GROUPS[1]],
        state_map={**MOMENTS, "residual_norm": "scaling_grad"}, expect_step=1,
        cause="at α ≠ 1 the code's residual G − αPR keeps (1−α)PR and skips α on S; Algorithm 1's is (I − PPᵀ)G "
              "scaled by α. The moments agree, the residual norm and the step differ from step 1"),
    Recipe(
        id="po-galore", implementation="pytorch-optimizer 4.1.0 GaLore", distribution="pytorch-optimizer",
        reference="galore_adamw", candidate="pytorch_optimizer:GaLore",
        reference_kwargs={"variant": "official", "rank": 4, "scale": 1.0}, candidate_kwargs={"foreach": False},
        groups=PO_GROUPS, state_map=MOMENTS, expect_step=200,
        cause="refreshes one step early: its per-group counter is incremented before projecting, so the basis is "
              "recomputed at step T = 200 instead of T + 1 (the authors' code, Algorithm 2's t mod T = 0 from t = 0)"),
    Recipe(
        id="po-fira", implementation="pytorch-optimizer 4.1.0 Fira", distribution="pytorch-optimizer",
        reference="fira_adamw", candidate="pytorch_optimizer:Fira",
        reference_kwargs={"variant": "official", "rank": 4, "scale": 1.0}, candidate_kwargs={"foreach": False},
        groups=PO_GROUPS, state_map={**MOMENTS, "residual_norm": "scaling_grad"}, expect_step=200,
        cause="the same early refresh as its GaLore (step 200 instead of 201)"),
    Recipe(
        id="po-mars", implementation="pytorch-optimizer 4.1.0 MARS", distribution="pytorch-optimizer",
        reference="mars_adamw", candidate="pytorch_optimizer:MARS",
        reference_kwargs={"variant": "official", "routing": "ours"}, candidate_kwargs={"foreach": False},
        state_map=MOMENTS,
        cause="float32 agrees (max 1.3e-6): its ε deviation is below float32 round-off. routing='ours': it treats "
              "every ndim ≥ 2 tensor (the 4x3x5 one) as a MARS parameter"),
    Recipe(
        id="po-mars-strict", implementation="pytorch-optimizer 4.1.0 MARS (float64)", distribution="pytorch-optimizer",
        reference="mars_adamw", candidate="pytorch_optimizer:MARS",
        reference_kwargs={"variant": "official", "routing": "ours"}, candidate_kwargs={"foreach": False},
        state_map=MOMENTS, strict=True, expect_step=1,
        cause="ε placement: (√(v + 1e-15) + ε)/√(1−β2ᵗ) instead of √v/√(1−β2ᵗ) + ε (ε scaled by 1/√(1−β2ᵗ), "
              "1e-15 inside the root); moments agree exactly, the step differs by ~1e-6 relative"),
    Recipe(
        id="po-mars-defaults", implementation="pytorch-optimizer 4.1.0 MARS, defaults", distribution="pytorch-optimizer",
        reference="mars_adamw", candidate="pytorch_optimizer:MARS", candidate_kwargs={"foreach": False}, expect_step=2,
        explains=("variant='official' reproduces",),
        cause="first try against variant='paper': c₁ = g₁ (paper) vs (1+k)g₁ (code), a global vs per-tensor clip, "
              "MARS on every tensor vs the AdamW fallback for non-matrices; step 1 agrees because Adam normalises "
              "the scale of c₁. The report points at variant='official'"),
    Recipe(
        id="po-adamwsn-defaults", implementation="pytorch-optimizer 4.1.0 AdamWSN, defaults", distribution="pytorch-optimizer",
        reference="adam_sn", candidate="pytorch_optimizer:AdamWSN", groups=[{"params": "all", "sn": True}],
        expect_step=1, explains=("eps: reference 1e-06, candidate 1e-08", "subset_size: reference -2, candidate -1"),
        cause="first try: subset_size −1 (√d) vs −2 (√d/2) and ε 1e-8 vs 1e-6; the report lists both"),
    Recipe(
        id="po-adamwsn", implementation="pytorch-optimizer 4.1.0 AdamWSN", distribution="pytorch-optimizer",
        reference="adam_sn", candidate="pytorch_optimizer:AdamWSN", kwargs={"eps": 1e-8, "subset_size": -1},
        reference_kwargs={"variant": "official"}, groups=[{"params": "all", "sn": True}], state_map=MOMENTS,
        cause="variant='official' (HF ε placement, decay after the update) with its subset size and ε"),
    Recipe(
        id="po-lion", implementation="pytorch-optimizer 4.1.0 Lion", distribution="pytorch-optimizer",
        reference="lion", candidate="pytorch_optimizer:Lion", candidate_kwargs={"foreach": False},
        state_map={"exp_avg": "exp_avg"}, cause="identical (decoupled decay on the pre-update iterate)"),
    Recipe(
        id="po-lion-strict", implementation="pytorch-optimizer 4.1.0 Lion (float64)", distribution="pytorch-optimizer",
        reference="lion", candidate="pytorch_optimizer:Lion", candidate_kwargs={"foreach": False},
        state_map={"exp_avg": "exp_avg"}, strict=True, cause="identical in float64"),
    Recipe(
        id="lion-pytorch", implementation="lion-pytorch 0.2.5 Lion", distribution="lion-pytorch",
        reference="lion", candidate="lion_pytorch:Lion", state_map={"exp_avg": "exp_avg"},
        cause="identical: Algorithm 2 with the decay scaled by lr on the pre-update iterate"),
    Recipe(
        id="lion-pytorch-strict", implementation="lion-pytorch 0.2.5 Lion (float64)", distribution="lion-pytorch",
        reference="lion", candidate="lion_pytorch:Lion", state_map={"exp_avg": "exp_avg"}, strict=True,
        cause="identical in float64 (the same operations: error 0)"),
]


def available(recipe: Recipe) -> bool:
    return importlib.util.find_spec(recipe.module) is not None


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_recipe(recipe: Recipe) -> OracleReport:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # galore-torch's deprecation notice
        return compare(recipe.reference, recipe.candidate, **recipe.options())


def _row(recipe: Recipe, report: OracleReport) -> dict[str, Any]:
    f = report.failure
    return {
        "id": recipe.id,
        "implementation": recipe.implementation,
        "version": _version(recipe.distribution),
        "reference": recipe.reference,
        "command": recipe.command(),
        "verdict": "PASS" if report.passed else "FAIL",
        "expected": "PASS" if recipe.expect_step is None else f"FAIL at step {recipe.expect_step}",
        "as_expected": report.first_failure == recipe.expect_step,
        "first_failure": None if f is None else json.loads(report.to_json())["first_failure"],
        "max_param_error": max((x for x in report.param_err if x != float("inf")), default=None),
        "steps": report.steps,
        "dtype": report.dtype,
        "rtol": report.rtol,
        "cause": recipe.cause,
        "hyperparameter_differences": report.hyperparameters.to_dict()["differences"],
    }


def write_report(out_dir: str) -> list[dict[str, Any]]:
    """Run every recipe whose package is installed; write ``thirdparty.json`` and ``thirdparty.md``."""
    rows = []
    for recipe in RECIPES:
        if not available(recipe):
            rows.append({"id": recipe.id, "implementation": recipe.implementation, "verdict": "SKIPPED",
                         "cause": f"{recipe.distribution} is not installed"})
            continue
        rows.append(_row(recipe, run_recipe(recipe)))
    os.makedirs(out_dir, exist_ok=True)
    meta = {"torch": torch.__version__, "device": "cpu", "gradients": "lowrank", "shapes": "oracle defaults",
            "regenerate": "make crosscheck && .venv/bin/python -m verify.oracle.recipes --out results/oracle"}
    with open(os.path.join(out_dir, "thirdparty.json"), "w") as fh:
        json.dump({"environment": meta, "rows": rows}, fh, indent=1, allow_nan=False)
        fh.write("\n")
    with open(os.path.join(out_dir, "thirdparty.md"), "w") as fh:
        fh.write(_markdown(rows, meta))
    return rows


def _markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = [
        "# Third-party optimizers through the oracle",
        "",
        f"Generated by `{meta['regenerate']}` (torch {meta['torch']}, CPU). Every row is one `verify oracle` run "
        "with the oracle's default settings (shapes 24x16, 16x24, 20x20, 4x3x5, 17, 0-D; low-rank gradient stream; "
        "50 steps, or 401 for projected methods; weight decay 0.1 on both sides), float32 unless stated. "
        "\"defaults\" rows are what a first try gives; the others use the settings that make the implementation "
        "comparable, so any remaining FAIL is a deviation, located at the step where it first acts.",
        "",
        "| implementation | version | reference | verdict | first divergence | cause |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r["verdict"] == "SKIPPED":
            lines.append(f"| {r['implementation']} | – | – | SKIPPED | – | {r['cause']} |")
            continue
        f = r["first_failure"]
        where = "–"
        if f:
            err = "not a number" if f["error"] is None else f"{f['error']:.2e}"
            target = f"{f['param_name']}" if f["param_name"] else "step()"
            where = f"step {f['step']}, {f['quantity']} of {target}: {err}" if f["error"] is not None else \
                f"step {f['step']}, {f['quantity']} of {target}: {f['reason']}"
        verdict = r["verdict"] if r["as_expected"] else f"{r['verdict']} (expected {r['expected']})"
        lines.append(f"| {r['implementation']} | {r['version']} | `{r['reference']}` | {verdict} | {where} | {r['cause']} |")
    lines += ["", "## Commands", ""]
    for r in rows:
        if r["verdict"] != "SKIPPED":
            lines += [f"- {r['implementation']}:", "", f"  ```bash\n  {r['command']}\n  ```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run the third-party oracle recipes and write the report")
    parser.add_argument("--out", default="results/oracle")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    rows = write_report(args.out)
    for r in rows:
        print(f"{r['verdict']:8s} {r['implementation']}" + ("" if r.get("as_expected", True) else "  << UNEXPECTED"))
    return 0 if all(r.get("as_expected", True) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
