"""``verify bench``: throughput of the batched many-seed runner against a per-seed torch.optim loop."""

from __future__ import annotations

NAME = "bench"
HELP = "benchmark the batched many-seed runner (steps x seeds per second) against a per-seed loop"
DESCRIPTION = (HELP + ". Workload: P1 (d=1000, float64) with Gaussian noise, S=256 seeds, Adam and AdaGrad-Norm; "
               "see verify/bench.py. With --gpu: every optimizer's step time, memory and training throughput on "
               "LLaMA-60M/350M shapes on a CUDA device against torch AdamW, the installed third-party "
               "implementations and the memory-bound floor (verify/gpu_bench.py). With --cpu-steps: the same step-time "
               "table on the CPU (default shapes tiny and small), each optimizer's reference and fast paths side by "
               "side.")


def add_arguments(parser) -> None:
    from verify.bench import DEFAULTS

    parser.add_argument("--dim", type=int, default=DEFAULTS["dim"])
    parser.add_argument("--seeds", type=int, default=DEFAULTS["seeds"])
    parser.add_argument("--batched-steps", type=int, default=DEFAULTS["batched_steps"])
    parser.add_argument("--loop-steps", type=int, default=DEFAULTS["loop_steps"])
    parser.add_argument("--repeats", type=int, default=DEFAULTS["repeats"])
    parser.add_argument("--threads", type=int, default=DEFAULTS["threads"], help="intra-op threads (default 2)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default=DEFAULTS["dtype"])
    parser.add_argument("--optimizer", action="append", help="only these registry names (repeatable)")
    parser.add_argument("--json", metavar="PATH", default=None,
                        help="where to write the results (default bench_runner.json, or gpu_step.json with --gpu)")
    parser.add_argument("--gpu", action="store_true", help="the GPU optimizer benchmark (needs CUDA)")
    parser.add_argument("--cpu-steps", action="store_true",
                        help="the optimizer step-time table on the CPU: reference and fast paths side by side")
    parser.add_argument("--models", default=None,
                        help="with --gpu / --cpu-steps: model shapes (default llama-60m,llama-350m / tiny,small)")
    parser.add_argument("--markdown", metavar="PATH", help="with --gpu / --cpu-steps: also write the table as Markdown")


def run(args) -> int:
    import sys

    from verify.bench import run_benchmark, save
    from verify.commands._output import refuse_unwritable

    args.json = args.json or ("gpu_step.json" if args.gpu else "cpu_step.json" if args.cpu_steps else "bench_runner.json")
    if refuse_unwritable(NAME, files={"--json": args.json, "--markdown": args.markdown}):
        return 2
    if args.gpu:
        import torch

        if not torch.cuda.is_available():
            print("verify bench: error: --gpu needs a CUDA device (torch.cuda.is_available() is False)", file=sys.stderr)
            return 2
        from verify import gpu_bench

        return gpu_bench.main(["--json", args.json, "--models", args.models or "llama-60m,llama-350m"]
                              + (["--markdown", args.markdown] if args.markdown else []))
    if args.cpu_steps:
        from verify import gpu_bench

        return gpu_bench.main(["--device", "cpu", "--no-training", "--threads", str(args.threads), "--json", args.json,
                               "--models", args.models or "tiny,small"]
                              + (["--markdown", args.markdown] if args.markdown else []))

    report = run_benchmark(dim=args.dim, seeds=args.seeds, batched_steps=args.batched_steps, loop_steps=args.loop_steps,
                           repeats=args.repeats, threads=args.threads, dtype=args.dtype,
                           optimizers=tuple(args.optimizer) if args.optimizer else None)
    save(report, args.json)
    print(f"wrote {args.json}")
    return 0
