"""``verify oracle``: compare your optimizer against a reference implementation, step by step."""

from __future__ import annotations

NAME = "oracle"
HELP = "step a candidate optimizer and a reference on identical gradients and report the error"
DESCRIPTION = """\
Use optverify's float64 reference as ground truth for your own (fused, low-precision, distributed)
optimizer or a third-party package. Exit status: 0 PASS, 1 FAIL, 2 bad input.

examples:
  verify oracle --reference adam --candidate torch.optim:AdamW --kwargs '{"lr": 1e-3}' \\
      --state-map exp_avg=exp_avg,exp_avg_sq=exp_avg_sq
  verify oracle --reference galore_adamw --candidate galore_torch:GaLoreAdamW --stub-missing transformers,bitsandbytes \\
      --reference-kwargs '{"variant": "official", "rank": 4, "scale": 1.0}' \\
      --candidate-kwargs '{"no_deprecation_warning": true}' \\
      --groups '[{"params": "matrices", "rank": 4, "update_proj_gap": 200, "scale": 1.0, "proj_type": "std"}, {"params": "rest"}]'
  verify trace adam --out adam.npz && verify oracle --trace adam.npz --candidate mymodule:MyAdamW
  verify oracle --nproc 2 --reference galore_adamw --candidate mymodule:ShardedGaLore --strict   # FSDP2 shards, gloo

Defaults (shapes, steps, gradients, the weight decay and ranks filled in) are listed in every report;
see verify/oracle/settings.py. A module in the current directory can be named in --candidate.
"""

DTYPES = ("float64", "float32", "bfloat16", "float16")


def add_arguments(parser) -> None:
    from verify.oracle.gradients import GRADIENT_KINDS

    src = parser.add_argument_group("what to compare")
    src.add_argument("--reference", help="registry name of the reference (see `verify list`)")
    src.add_argument("--trace", metavar="FILE", help="check against a trace written by `verify trace` instead")
    src.add_argument("--candidate", required=True,
                     help="module:Class or module:factory (called as factory(params, **kwargs))")
    src.add_argument("--stub-missing", default="", metavar="MODULES",
                     help="comma-separated top-level modules to stub while importing the candidate when they are "
                          "not installed (e.g. transformers,bitsandbytes for galore-torch and fira)")
    hp = parser.add_argument_group("hyperparameters")
    hp.add_argument("--kwargs", default="{}", help="JSON hyperparameters for both optimizers")
    hp.add_argument("--reference-kwargs", default="{}", help="JSON, for the reference only (wins over --kwargs)")
    hp.add_argument("--candidate-kwargs", default="{}", help="JSON, for the candidate only (wins over --kwargs)")
    hp.add_argument("--groups", default=None, help="JSON list of candidate parameter groups, e.g. "
                    '\'[{"params": "matrices", "rank": 4}, {"params": "rest"}]\' (selectors: matrices, tensors, '
                    "vectors, scalars, non-matrices, all, rest, or a list of indices/names)")
    hp.add_argument("--reference-groups", default=None, help="JSON list of reference parameter groups (same form)")
    run = parser.add_argument_group("run")
    run.add_argument("--dtype", choices=DTYPES, default=None, help="candidate dtype (default float32)")
    run.add_argument("--strict", action="store_true", help="float64 candidate and rtol 1e-10, to see deviations "
                     "below float32 round-off")
    run.add_argument("--steps", type=int, default=None, help="default: 50, or 2 refresh periods + 1 for projected methods")
    run.add_argument("--gradients", choices=GRADIENT_KINDS, default="lowrank")
    run.add_argument("--shapes", default=None, help="comma-separated shapes (default 24x16,16x24,20x20,4x3x5,17,0d)")
    run.add_argument("--state-map", default="", help="ref_key=cand_key,... state tensors to compare")
    run.add_argument("--rtol", type=float, default=None, help="override the dtype's default tolerance")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--device", default="cpu")
    run.add_argument("--nproc", type=int, default=None, metavar="N",
                     help="run the candidate under torch.distributed on N processes (gloo on CPU, nccl on CUDA); "
                          "parameters and mapped states are gathered after every step (verify/oracle/distributed.py)")
    run.add_argument("--layout", choices=("fsdp2", "ddp"), default="fsdp2",
                     help="with --nproc: parameters sharded on dim 0 as DTensors (fsdp2, default) or replicated (ddp)")
    run.add_argument("--timeout", type=float, default=600.0, help="with --nproc: seconds before the ranks are stopped")
    out = parser.add_argument_group("output")
    out.add_argument("--json", metavar="PATH", help="also write the report as JSON (with per-step series)")
    out.add_argument("--explain", action="store_true",
                     help="always print the hyperparameter diff and hints (default: when the first failure is at step 1)")


def parse_json_object(text: str, option: str) -> dict:
    import json

    from verify.oracle import OracleInputError

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OracleInputError(f"{option}: invalid JSON ({exc.msg} at column {exc.colno}): {text!r}") from None
    if not isinstance(value, dict):
        raise OracleInputError(f"{option}: expected a JSON object like '{{\"lr\": 1e-3}}', got {text!r}")
    return {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}


def parse_state_map(text: str) -> dict[str, str]:
    from verify.oracle import OracleInputError

    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        ref, sep, cand = item.partition("=")
        if not sep or not ref.strip() or not cand.strip():
            raise OracleInputError(f"--state-map: expected ref_key=cand_key pairs joined by ',', got {item!r}")
        out[ref.strip()] = cand.strip()
    return out


def prepare_process() -> None:
    """The current directory is importable (as with ``python -m``); one intra-op thread (small tensors)."""
    import os
    import sys

    import torch

    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    torch.set_num_threads(1)


def run(args) -> int:
    import sys

    import torch

    from verify.commands._output import refuse_unwritable
    from verify.oracle import OracleInputError, check_trace, compare, load_candidate
    from verify.oracle.problem import parse_shapes

    if refuse_unwritable(NAME, files={"--json": args.json}):
        return 2
    prepare_process()
    try:
        if (args.reference is None) == (args.trace is None):
            raise OracleInputError("give exactly one of --reference NAME or --trace FILE")
        stub = [s.strip() for s in args.stub_missing.split(",") if s.strip()]
        candidate = load_candidate(args.candidate, stub_missing=stub)
        common = dict(
            kwargs=parse_json_object(args.kwargs, "--kwargs"),
            candidate_kwargs=parse_json_object(args.candidate_kwargs, "--candidate-kwargs"),
            candidate_groups=args.groups,
            dtype=getattr(torch, args.dtype) if args.dtype else None,
            rtol=args.rtol,
            strict=args.strict,
            state_map=parse_state_map(args.state_map),
            device=args.device,
            candidate_name=args.candidate,
        )
        if args.trace:
            for option, value in (("--reference-kwargs", args.reference_kwargs != "{}"),
                                  ("--reference-groups", args.reference_groups), ("--shapes", args.shapes),
                                  ("--steps", args.steps), ("--seed", args.seed), ("--gradients", args.gradients != "lowrank"),
                                  ("--nproc", args.nproc is not None)):
                if value:
                    raise OracleInputError(f"{option} does not apply to --trace (the trace fixes the reference and the run)")
            report = check_trace(args.trace, candidate, **common)
        else:
            if args.steps is not None and args.steps < 1:
                raise OracleInputError(f"--steps must be >= 1, got {args.steps}")
            run_compare = compare
            if args.nproc is not None:
                from functools import partial

                from verify.oracle.distributed import compare_distributed

                if args.nproc < 1:
                    raise OracleInputError(f"--nproc must be >= 1, got {args.nproc}")
                # the ranks import the candidate themselves, by its path
                candidate = args.candidate
                run_compare = partial(compare_distributed, nproc=args.nproc, layout=args.layout, timeout=args.timeout)
            report = run_compare(
                args.reference, candidate,
                reference_kwargs=parse_json_object(args.reference_kwargs, "--reference-kwargs"),
                reference_groups=args.reference_groups,
                shapes=parse_shapes(args.shapes) if args.shapes is not None else None,
                steps=args.steps, gradients=args.gradients, seed=args.seed, stub_missing=stub, **common,
            )
    except OracleInputError as exc:
        print(f"verify oracle: error: {exc}", file=sys.stderr)
        return 2
    except (TimeoutError, RuntimeError) as exc:  # --nproc: ranks that timed out or died
        if args.nproc is None:
            raise
        print(f"verify oracle: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary(explain=True if args.explain else None))
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(report.to_json())
    return 0 if report.passed else 1
