"""``verify memory``: optimizer-state memory from the sympy formulas, for a LLaMA config (docs/memory.md).

    verify memory --model llama-1b            # the table: every algorithm, states / projectors / EF / GiB
    verify memory --model 60m --rank 64 --dtype fp32 --json
    verify memory --compare                   # the papers' tables, cell by cell, with the reasons
    verify memory --check                     # measured state == formula, exactly, for every registered algorithm
    verify memory --write results/memory      # model_totals.json and paper_comparison.json
    verify memory --transients results/memory # step transients on CPU vs the formulas (cpu_transients.json)
"""

from __future__ import annotations

NAME = "memory"
HELP = "optimizer-state memory: formulas, model totals, paper tables, exact measured == formula check"
DESCRIPTION = HELP + " (examples in the module docstring: python -m pydoc verify.commands.memory)"


def add_arguments(parser) -> None:
    parser.add_argument("--model", default="llama-1b", help="llama-60m | llama-130m | llama-350m | llama-1b | llama-7b")
    parser.add_argument("--rank", type=int, default=None, help="rank of the low-rank methods (default: GaLore Table 2)")
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32", "fp64"), help="state dtype")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--compare", action="store_true", help="compare with the papers' tables")
    parser.add_argument("--check", action="store_true", help="measured state == formula for every registered algorithm")
    parser.add_argument("--write", metavar="DIR", default=None, help="write model_totals.json and paper_comparison.json")
    parser.add_argument("--transients", metavar="DIR", default=None,
                        help="measure step transients on CPU vs the formulas; write DIR/cpu_transients.json")


def _small_rank_kwargs(cls) -> dict:
    """Constructor kwargs that fit every shape of the check (ranks 2–3) and switch momentum buffers on."""
    import inspect

    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {"lr": 1e-3}
    for key, value in (("rank", 2), ("max_rank", 3), ("momentum", 0.9)):
        if key in accepted:
            kwargs[key] = value
    return kwargs


def _check() -> int:
    import warnings

    import torch

    import algorithms
    from verify.memory.measure import compare_state

    shapes = [(), (7,), (12, 5), (5, 12), (8, 8), (3, 6, 4), (4, 3, 3, 2), (0, 5)]
    failed = 0
    for name in sorted(algorithms.REGISTRY):
        try:
            g = torch.Generator().manual_seed(0)
            params = [torch.randn(s, generator=g, dtype=torch.float64).requires_grad_() for s in shapes]
            kwargs = _small_rank_kwargs(algorithms.REGISTRY[name])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                opt = algorithms.make(name, params, **kwargs)
            for _ in range(3):
                opt.zero_grad()
                sum((q.sin() * q).sum() for q in params).backward()
                opt.step()
            cmp = compare_state(opt, name)
            ok, detail = cmp.exact, cmp.summary()
        except Exception as exc:  # a formula that raises is a failed check
            ok, detail = False, f"{name}: error {type(exc).__name__}: {exc}"
        failed += not ok
        print(f"[{'PASS' if ok else 'FAIL'}] {detail}")
    return 1 if failed else 0


def _transients(out_dir: str) -> int:
    import json
    from pathlib import Path

    from verify.memory.transient import transient_report

    report = transient_report()
    print(f"{'algorithm':<22} {'shape':<11} {'route':<10} {'measured B':>11} {'predicted B':>12} {'ratio':>6}")
    for r in report["rows"]:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        print(f"{r['algorithm']:<22} {'x'.join(map(str, r['shape'])):<11} {r['route']:<10} "
              f"{r['measured_peak_bytes']:>11,} {r['predicted_bytes']:>12,} {ratio:>6}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "cpu_transients.json").write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out / 'cpu_transients.json'}")
    return 0


def run(args) -> int:
    import json

    from verify.commands._output import refuse_unwritable
    from verify.memory.report import DTYPE_BYTES, format_table, totals_rows, write_results

    if refuse_unwritable(NAME, folders={"--write": args.write, "--transients": args.transients}):
        return 2

    if args.check:
        return _check()
    if args.transients:
        return _transients(args.transients)
    if args.write:
        for path in write_results(args.write, bytes_per_element=DTYPE_BYTES[args.dtype]):
            print(f"wrote {path}")
        return 0
    if args.compare:
        from verify.memory.paper_tables import all_comparisons

        out = all_comparisons()
        if args.json:
            print(json.dumps(out, indent=1))
            return 0
        for c in out["cells"]:
            print(f"[{c['verdict']:<8}] {c['source']} | {c['model']} | {c['entry']} | paper {c['paper_value']}: {c['reason']}")
        s = out["summary"]
        print(f"\n{s['matches']} of {s['cells']} cells reproduced, {s['mismatches']} not (reasons above)")
        return 0
    try:
        rows = totals_rows(args.model, rank=args.rank, bytes_per_element=DTYPE_BYTES[args.dtype])
    except ValueError as exc:
        print(f"verify memory: {exc}")
        return 2
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(format_table(rows, args.model, DTYPE_BYTES[args.dtype]))
    return 0
