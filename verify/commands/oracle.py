"""``verify oracle``: compare your optimizer against a reference implementation, step by step."""

from __future__ import annotations

NAME = "oracle"
HELP = "step a candidate optimizer and a reference on identical gradients and report the error"
DESCRIPTION = (
    "Use optverify's float64 reference as ground truth for your own (fused, low-precision, "
    "distributed) optimizer. Example: verify oracle --reference adam --candidate torch.optim:AdamW "
    "--kwargs '{\"lr\": 0.001}' --candidate-kwargs '{\"foreach\": false}' --state-map exp_avg=exp_avg"
)

DTYPES = {"float64": "float64", "float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def add_arguments(parser) -> None:
    parser.add_argument("--reference", required=True, help="registry name of the reference (see `verify list`)")
    parser.add_argument("--candidate", required=True, help="package.module:Class of your optimizer")
    parser.add_argument("--kwargs", default="{}", help="JSON hyperparameters for both optimizers")
    parser.add_argument("--reference-kwargs", default="{}", help="JSON, extra kwargs for the reference only")
    parser.add_argument("--candidate-kwargs", default="{}", help="JSON, extra kwargs for the candidate only")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32", help="candidate dtype")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--gradients", choices=["random", "loss"], default="random")
    parser.add_argument("--shapes", default="64x32,32x64,48x48,17", help="comma-separated shapes, e.g. 64x32,17")
    parser.add_argument("--state-map", default="", help="ref_key=cand_key,... state tensors to compare")
    parser.add_argument("--rtol", type=float, default=None, help="override the dtype's default tolerance")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", metavar="PATH", help="also write the report as JSON")


def parse_shapes(text: str) -> list[tuple[int, ...]]:
    shapes = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        shapes.append(tuple(int(x) for x in item.split("x")) if item != "0d" else ())
    if not shapes:
        raise ValueError("--shapes: give at least one shape")
    return shapes


def run(args) -> int:
    import json

    import torch

    from verify.commands._output import refuse_unwritable
    from verify.oracle import compare, load_candidate

    if refuse_unwritable(NAME, files={"--json": args.json}):
        return 2

    common = json.loads(args.kwargs)
    state_map = dict(kv.split("=", 1) for kv in args.state_map.split(",") if kv)
    report = compare(
        args.reference,
        load_candidate(args.candidate),
        reference_kwargs={**common, **json.loads(args.reference_kwargs)},
        candidate_kwargs={**common, **json.loads(args.candidate_kwargs)},
        shapes=parse_shapes(args.shapes),
        steps=args.steps,
        dtype=getattr(torch, DTYPES[args.dtype]),
        gradients=args.gradients,
        state_map=state_map,
        rtol=args.rtol,
        seed=args.seed,
        device=args.device,
        candidate_name=args.candidate,
    )
    print(report.summary())
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(report.to_json())
    return 0 if report.passed else 1
