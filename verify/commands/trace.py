"""``verify trace``: record a float64 reference run as a portable golden trace (.npz)."""

from __future__ import annotations

NAME = "trace"
HELP = "write a golden trace of a reference (gradients, parameters, states) that numpy alone can check"
DESCRIPTION = """\
Run the float64 reference on the oracle's gradient stream and write an .npz file with the gradients,
the parameters and state tensors at the recorded steps, and JSON metadata (hyperparameters, seeds,
shapes, the stream). Check a torch candidate with `verify oracle --trace FILE --candidate ...`, or
any framework with numpy (examples/numpy_trace_reader.py). Exit status: 0 written, 2 bad input.

examples:
  verify trace adam --kwargs '{"lr": 1e-3}' --out adam.npz
  verify trace --all --out-dir results/oracle/traces     # the committed small traces (paper defaults)
"""


def add_arguments(parser) -> None:
    parser.add_argument("name", nargs="?", help="registry name of the reference (see `verify list`)")
    parser.add_argument("--all", action="store_true",
                        help="every registered optimizer at its paper defaults, small shapes (the committed traces)")
    parser.add_argument("--out", metavar="FILE", help="the trace file (.npz) for NAME")
    parser.add_argument("--out-dir", metavar="DIR", help="the directory for --all (one NAME.npz each, and index.json)")
    parser.add_argument("--kwargs", default="{}", help="JSON hyperparameters of the reference")
    parser.add_argument("--reference-groups", default=None, help="JSON list of parameter groups (see verify oracle)")
    parser.add_argument("--shapes", default=None, help="comma-separated shapes (default: the oracle's)")
    parser.add_argument("--steps", type=int, default=None, help="default: as verify oracle")
    parser.add_argument("--gradients", choices=("lowrank", "random"), default="lowrank")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--record-every", type=int, default=1, metavar="K",
                        help="store parameters and states every K steps (and at the last step)")
    parser.add_argument("--states", default=None, help="comma-separated state keys to store (default: all float tensors)")


def run(args) -> int:
    import sys

    from verify.commands.oracle import parse_json_object, prepare_process
    from verify.oracle import OracleInputError, write_trace
    from verify.oracle.problem import parse_shapes
    from verify.oracle.trace import write_golden_traces

    prepare_process()
    try:
        if args.record_every < 1:
            raise OracleInputError(f"--record-every must be >= 1, got {args.record_every}")
        if args.all:
            if args.name or args.out or not args.out_dir:
                raise OracleInputError("--all writes every optimizer into --out-dir DIR (no NAME, no --out)")
            for line in write_golden_traces(args.out_dir):
                print(line)
            return 0
        if not args.name or not args.out:
            raise OracleInputError("give NAME and --out FILE (or --all --out-dir DIR)")
        steps = args.steps
        record = None
        if args.record_every > 1:
            if steps is None:
                raise OracleInputError("--record-every needs --steps (the recorded steps depend on it)")
            record = sorted({*range(args.record_every, steps + 1, args.record_every), steps})
        states = [s.strip() for s in args.states.split(",") if s.strip()] if args.states else None
        meta = write_trace(
            args.name, args.out, kwargs=parse_json_object(args.kwargs, "--kwargs"),
            reference_groups=args.reference_groups,
            shapes=parse_shapes(args.shapes) if args.shapes is not None else None,
            steps=steps, gradients=args.gradients, seed=args.seed, record=record, states=states,
        )
    except OracleInputError as exc:
        print(f"verify trace: error: {exc}", file=sys.stderr)
        return 2
    import os

    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.1f} KiB): {meta['reference']}, {meta['steps']} steps, "
          f"{len(meta['recorded_steps'])} recorded, states {sorted(meta['states'])}")
    for note in meta["settings"]:
        print(f"  {note}")
    return 0
