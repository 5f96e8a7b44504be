"""verify bench: the benchmark's plumbing on a tiny workload (speed itself is measured by `verify bench`, never here)."""

from __future__ import annotations

import json

from verify.bench import run_benchmark
from verify.cli import build_parser


def test_benchmark_report_compares_equal_work(tmp_path):
    lines = []
    report = run_benchmark(dim=12, seeds=3, batched_steps=3, loop_steps=2, repeats=1, threads=1, echo=lines.append)
    names = {(c["optimizer"], c["workload"]) for c in report["cases"]}
    assert {("adam", "gaussian"), ("adam", "rademacher"), ("adam", "exact")} <= names
    for case in report["cases"]:
        # the same-stream loop reproduces the runner's trajectories: the timing compares the same work
        assert case["max_rel_diff_batched_vs_same_streams_loop"] <= 1e-12, case
        assert case["batched_seed_steps_per_s"] > 0 and case["speedup_vs_plain_loop"] > 0
    assert len(lines) == len(report["cases"])
    json.dumps(report)


def test_bench_command_is_discovered():
    args = build_parser().parse_args(["bench", "--seeds", "8", "--json", "out.json"])
    assert args.seeds == 8 and args.json == "out.json" and callable(args._run)
