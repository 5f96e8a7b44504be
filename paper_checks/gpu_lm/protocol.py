"""The validation protocol's runner: resumable training runs, a work queue, and the command line.

    python -m paper_checks.gpu_lm.protocol corpus   --plan gpu     # build + check the pinned text corpus
    python -m paper_checks.gpu_lm.protocol run      --plan gpu --seconds 540   # run pieces of the plan
    python -m paper_checks.gpu_lm.protocol status   --plan gpu     # finished / runnable / waiting, selections
    python -m paper_checks.gpu_lm.protocol estimate --plan gpu     # GPU time of the plan (paper_checks/gpu_lm/estimate.py)

**A run** (:func:`train_run`) trains the byte model of the plan on one corpus with one method, learning-rate
multiplier and seed: the model is initialised from ``torch.manual_seed(seed)``; the batches of steps
``[c·K, (c+1)·K)`` (``K = data_chunk``) are drawn in one call from a generator seeded with
``(seed + 1) · 1000003 + c``, so a batch depends only on (seed, step), never on how the run was split; the
learning rate follows :func:`paper_checks.gpu_lm.train.lr_factor`; gradients are clipped to norm
``plan.clip``; on CUDA the forward pass runs under bf16 autocast (fp32 weights and optimizer state). The
evaluation set is fixed per corpus (HMM: sequences from a generator seeded with ``eval_seed``, whose
optimal loss ``H*`` the forward algorithm gives exactly; text: ``eval_seqs`` windows at evenly spaced
offsets of the validation split).

**Checkpoints** (``.protocol/ckpt/<plan>/<run>.pt``: model, optimizer ``state_dict`` with its generators,
the step, the records so far, the fingerprint) are written every ``checkpoint_every`` steps and when the
time given to the call runs out, and loaded with ``torch.load(weights_only=True)``. A resumed run equals
an uninterrupted one bit for bit on the CPU (``tests/paper_checks/test_protocol.py``); on CUDA up to the
non-determinism of its kernels. A finished run writes ``runs/<run>.json`` and deletes its checkpoint.

**The queue** (:func:`work`) takes runs in plan order (:func:`paper_checks.gpu_lm.plan.schedule`), each
under an exclusive ``flock`` so that one worker per GPU can share a results folder, until the time is up.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from synthetic.llama import Llama

from .corpus import TextCorpusSpec, build_corpus, load_corpus
from .data import HMMLanguage, HMMSpec
from .plan import (Plan, RunSpec, StaleResult, fingerprint, load_plan, load_results, progress, progress_text,
                   schedule, write_json)
from .recipes import RECIPES, build_optimizer
from .train import evaluate, gradient_rank_summary, lr_factor

ROOT = Path(__file__).resolve().parents[2]
CKPT_ROOT = ROOT / ".protocol" / "ckpt"
#: steps after each (re)start of a run left out of the step-time statistics (allocator, kernel selection)
TIMING_WARMUP = 3


def data_seed(seed: int, chunk: int) -> int:
    return (seed + 1) * 1_000_003 + chunk


class Stream:
    """Training batches by (seed, step), drawn ``data_chunk`` batches at a time, and a fixed evaluation set."""

    eval_tokens: torch.Tensor
    h_star: float | None  #: the optimal loss of the evaluation set, where it is known

    def __init__(self, plan: Plan, device: torch.device):
        self.plan, self.device, self._chunk = plan, device, (None, None)

    def _draw(self, seed: int, chunk: int) -> torch.Tensor:
        raise NotImplementedError

    def batch(self, seed: int, step: int) -> torch.Tensor:
        chunk, row = divmod(step, self.plan.data_chunk)
        if self._chunk[0] != (seed, chunk):
            self._chunk = ((seed, chunk), self._draw(seed, chunk))
        b = self.plan.batch
        return self._chunk[1][row * b : (row + 1) * b]


class HMMStream(Stream):
    """The HMM language (:mod:`.data`): fresh sequences every step; ``H*`` of the evaluation set exact."""

    def __init__(self, spec: dict, plan: Plan, device: torch.device):
        super().__init__(plan, device)
        hmm = HMMSpec(**{k: v for k, v in spec.items() if k not in ("kind", "metric", "eval_seed")})
        self.lang = HMMLanguage(hmm, device=device)
        eval_gen = torch.Generator(device=device).manual_seed(spec["eval_seed"])
        self.eval_tokens = self.lang.sample(plan.eval_seqs, plan.seq + 1, eval_gen)
        self.h_star = self.lang.optimal_loss(self.eval_tokens)

    def _draw(self, seed: int, chunk: int) -> torch.Tensor:
        gen = torch.Generator(device=self.device).manual_seed(data_seed(seed, chunk))
        return self.lang.sample(self.plan.batch * self.plan.data_chunk, self.plan.seq + 1, gen)


class TextStream(Stream):
    """Training windows drawn uniformly from the training split of the pinned text corpus (:mod:`.corpus`);
    the offsets come from a CPU generator, so the batches are the same on every device."""

    def __init__(self, spec: dict, plan: Plan, device: torch.device):
        super().__init__(plan, device)
        corpus = load_corpus(TextCorpusSpec.from_dict({k: v for k, v in spec.items() if k != "metric"}))
        self.train = corpus.train.to(device)
        val = corpus.val.to(device)
        self.width = torch.arange(plan.seq + 1, device=device)
        offsets = torch.linspace(0, val.numel() - plan.seq - 1, plan.eval_seqs).long().to(device)
        self.eval_tokens = val[offsets[:, None] + self.width].long()
        self.h_star = None

    def _draw(self, seed: int, chunk: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(data_seed(seed, chunk))
        offsets = torch.randint(0, self.train.numel() - self.plan.seq, (self.plan.batch * self.plan.data_chunk,),
                                generator=gen).to(self.device)
        return self.train[offsets[:, None] + self.width].long()


def make_stream(plan: Plan, corpus: str, device: torch.device) -> Stream:
    spec = dict(plan.corpora[corpus])
    return (HMMStream if spec["kind"] == "hmm" else TextStream)(spec, plan, device)


def describe_device(device: torch.device) -> dict:
    """The device a result was measured on, named (results always say where they came from)."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        extra = {"cuda": torch.version.cuda, "gpus_visible": torch.cuda.device_count()}
    else:
        name = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores visible)"
        extra = {"threads": torch.get_num_threads()}
    return {"name": name, "type": device.type, "torch": torch.__version__, "python": platform.python_version(), **extra}


def git_commit() -> str | None:
    """The commit the code came from: ``OPTVERIFY_GIT_COMMIT`` (set on machines without ``.git``), else git."""
    if os.environ.get("OPTVERIFY_GIT_COMMIT"):
        return os.environ["OPTVERIFY_GIT_COMMIT"]
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return None
    return out.stdout.strip() or None


def parameter_digest(model: torch.nn.Module) -> str:
    """sha256 over every parameter's bytes, in ``named_parameters`` order."""
    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _records() -> dict:
    return {"curve": [], "grad_rank": [], "train_loss_sum": 0.0, "train_loss_count": 0, "step_times": [],
            "segments": [], "diverged": False, "wall_s": 0.0}


def _save_checkpoint(path: Path, fp: str, step: int, model, opt, records: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save({"fingerprint": fp, "step": step, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "records": {**records, "step_times": torch.tensor(records["step_times"], dtype=torch.float64)}}, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, fp: str, model, opt) -> tuple[int, dict]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if ckpt["fingerprint"] != fp:
        raise StaleResult(f"checkpoint {path} belongs to another version of this run (fingerprint differs); "
                          "delete it to start the run afresh")
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    records = ckpt["records"]
    records["step_times"] = records["step_times"].tolist()
    return int(ckpt["step"]), records


def _timing(records: dict, tokens_per_step: int) -> dict:
    """Step-time statistics without the first :data:`TIMING_WARMUP` steps after each (re)start; the mean
    includes the refresh steps (it is what throughput sees), the median is the steady step."""
    times, starts = records["step_times"], set(records["segments"])
    kept, skip = [], 0
    for i, t in enumerate(times):
        if i in starts:
            skip = TIMING_WARMUP
        if skip:
            skip -= 1
            continue
        kept.append(t)
    kept = kept or times
    if not kept:
        return {"mean_step_s": None, "median_step_s": None, "tokens_per_s": None, "timed_steps": 0}
    mean = statistics.fmean(kept)
    return {"mean_step_s": mean, "median_step_s": statistics.median(kept), "tokens_per_s": tokens_per_step / mean,
            "timed_steps": len(kept)}


def train_run(plan: Plan, spec: RunSpec, stream: Stream, *, out_dir: Path, ckpt_dir: Path,
              device: torch.device, deadline: float | None = None, stop_at: int | None = None,
              log: Callable[[str], None] = print) -> dict | None:
    """Train one run to its end, or until ``deadline`` (``time.time()``) or step ``stop_at`` (tests: a call
    that ends there), checkpointing; returns the result, or None when interrupted (the checkpoint holds it)."""
    started = time.perf_counter()
    fp = fingerprint(plan, spec)
    cuda = device.type == "cuda"
    torch.manual_seed(spec.seed)
    model = Llama(plan.model_config).to(device)
    opt, routing = build_optimizer(spec.method, model, rank=plan.rank, lr_scale=spec.lr_scale,
                                   refresh_gap=plan.refresh_gap)
    base_lrs = [g["lr"] for g in opt.param_groups]
    ckpt = Path(ckpt_dir) / f"{spec.key}.pt"
    step, records = (_load_checkpoint(ckpt, fp, model, opt) if ckpt.exists() else (0, _records()))
    if step:
        log(f"  {spec.key}: resumed at step {step}")
    records["segments"].append(len(records["step_times"]))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else contextlib.nullcontext
    warmup, rank_steps = plan.warmup(spec.steps), set(plan.rank_steps(spec.phase, spec.steps))
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    # time kept in hand before the deadline: a few steps, an evaluation and a checkpoint (first guessed at 200 MB/s)
    step_s, eval_s, ckpt_s = 0.0, 0.0, 3 * 4 * sum(p.numel() for p in model.parameters()) / 200e6
    while step < spec.steps:
        margin = 3 * step_s + eval_s + 2 * ckpt_s
        if stop_at is not None and step == stop_at or deadline is not None and time.time() + margin > deadline:
            records["wall_s"] += time.perf_counter() - started
            _save_checkpoint(ckpt, fp, step, model, opt, records)
            log(f"  {spec.key}: stopped at step {step} of {spec.steps}; checkpoint {ckpt}")
            return None
        for g, lr0 in zip(opt.param_groups, base_lrs):
            g["lr"] = lr0 * lr_factor(step, spec.steps, warmup)
        tokens = stream.batch(spec.seed, step)
        t0 = time.perf_counter()
        with autocast():
            loss = model.loss(tokens)
        loss.backward()
        rank_s = 0.0
        if step + 1 in rank_steps:
            r0 = time.perf_counter()
            records["grad_rank"].append({"step": step + 1, **gradient_rank_summary(model)})
            rank_s = time.perf_counter() - r0
        torch.nn.utils.clip_grad_norm_(model.parameters(), plan.clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize(device)
        step_s = time.perf_counter() - t0 - rank_s
        records["step_times"].append(step_s)
        step += 1
        value = float(loss.detach())
        if not math.isfinite(value):
            records["diverged"] = True
            log(f"  {spec.key}: non-finite loss at step {step}; stopped")
            break
        records["train_loss_sum"] += value
        records["train_loss_count"] += 1
        if step % plan.eval_every == 0 or step == spec.steps:
            e0 = time.perf_counter()
            ev = evaluate(model, stream.eval_tokens, plan.batch, autocast)
            eval_s = time.perf_counter() - e0
            train_mean = records["train_loss_sum"] / records["train_loss_count"]
            records["curve"].append({"step": step, "tokens": step * plan.tokens_per_step, "train_loss": train_mean,
                                     "eval_loss": ev, "gap": None if stream.h_star is None else ev - stream.h_star})
            records["train_loss_sum"], records["train_loss_count"] = 0.0, 0
            log(f"  {spec.key}: step {step:>6}  train {train_mean:.4f}  eval {ev:.4f}")
        if step % plan.checkpoint_every == 0 and step < spec.steps:
            c0 = time.perf_counter()
            _save_checkpoint(ckpt, fp, step, model, opt, records)
            ckpt_s = time.perf_counter() - c0
    records["wall_s"] += time.perf_counter() - started
    result = _result(plan, spec, stream, model, opt, routing, records, fp, device)
    write_json(Path(out_dir) / "runs" / f"{spec.key}.json", result)
    if ckpt.exists():
        ckpt.unlink()
    return result


def _result(plan: Plan, spec: RunSpec, stream, model, opt, routing: str, records: dict, fp: str,
            device: torch.device) -> dict:
    recipe = RECIPES[spec.method]
    state_bytes = sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
                      if isinstance(v, torch.Tensor))
    curve = records["curve"]
    last = curve[-1] if curve and not records["diverged"] else None
    return {
        **dataclasses.asdict(spec), "key": spec.key, "plan": plan.name, "fingerprint": fp,
        "lr": recipe["lr"] * spec.lr_scale, "recipe_lr": recipe["lr"], "hyper": recipe["hyper"],
        "group": recipe["group"], "routing": routing, "source": recipe["source"],
        "tokens_per_step": plan.tokens_per_step, "tokens": spec.steps * plan.tokens_per_step,
        "h_star": stream.h_star, "curve": curve, "grad_rank": records["grad_rank"],
        "final_eval_loss": last["eval_loss"] if last else None, "final_gap": last["gap"] if last else None,
        "diverged": records["diverged"], **_timing(records, plan.tokens_per_step),
        "optimizer_state_bytes": state_bytes, "parameters": sum(p.numel() for p in model.parameters()),
        "peak_allocated_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "calls": len(records["segments"]), "wall_s": records["wall_s"], "param_sha256": parameter_digest(model),
        "device": describe_device(device), "commit": git_commit(),
    }


@contextlib.contextmanager
def run_lock(ckpt_dir: Path, key: str):
    """An exclusive lock on one run (released when the process ends, even when killed); yields False when
    another worker holds it."""
    Path(ckpt_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(ckpt_dir) / f"{key}.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def write_selections(plan: Plan, out_dir: Path, sched) -> None:
    data = {corpus: {m: {**sel.to_dict(), "lr": None if sel.lr_scale is None else RECIPES[m]["lr"] * sel.lr_scale}
                     for m, sel in by_method.items()} for corpus, by_method in sched.selections.items()}
    write_json(Path(out_dir) / "selected_lr.json", {"plan": plan.name, "rule": "paper_checks/gpu_lm/plan.py select_lr",
                                                   "selections": data})


def work(plan: Plan, *, out_dir: Path, ckpt_dir: Path, device: torch.device, seconds: float | None = None,
         piece: str | None = None, corpora: list[str] | None = None, methods: list[str] | None = None,
         expected_seconds: Callable[[RunSpec], float | None] | None = None, min_start_s: float = 30.0,
         log: Callable[[str], None] = print) -> dict:
    """Run the plan's runnable runs (of ``piece``, and of the listed corpora and methods) in plan order until
    none is left or the time is up; returns what happened.

    With a time limit, a run is started only when ``expected_seconds(run)`` (None: unknown) fits in the time
    left; a run that does not fit is passed over for a later one that does. A run cut off by the limit all the
    same is checkpointed (and resumed by the next call on a machine that kept ``ckpt_dir``)."""
    deadline = None if seconds is None else time.time() + seconds
    chosen = plan.piece(piece)
    streams: dict[str, Stream] = {}
    finished, skipped, interrupted = [], [], None
    while True:
        sched = schedule(plan, load_results(plan, out_dir))
        write_selections(plan, out_dir, sched)
        todo = [r for r in sched.runnable if chosen.holds(r) and (not corpora or r.corpus in corpora)
                and (not methods or r.method in methods)]
        if not todo or deadline is not None and time.time() + min_start_s > deadline:
            break
        ran = False
        for spec in todo:
            need = expected_seconds(spec) if expected_seconds and deadline is not None else None
            resumable = (Path(ckpt_dir) / f"{spec.key}.pt").exists()
            if need is not None and not resumable and time.time() + need > deadline:
                if spec.key not in skipped:
                    skipped.append(spec.key)
                    log(f"[skip] {spec.key}: expected {need:.0f} s, {deadline - time.time():.0f} s left")
                continue
            with run_lock(ckpt_dir, spec.key) as mine:
                if not mine:
                    continue
                if (Path(out_dir) / "runs" / f"{spec.key}.json").exists():  # finished meanwhile by another worker
                    ran = True
                    break
                if spec.corpus not in streams:
                    streams[spec.corpus] = make_stream(plan, spec.corpus, device)
                log(f"[run] {spec.key} ({spec.steps} steps" + (f", expected {need:.0f} s)" if need else ")"))
                result = train_run(plan, spec, streams[spec.corpus], out_dir=out_dir, ckpt_dir=ckpt_dir, device=device,
                                   deadline=deadline, log=log)
                ran = True
                if result is None:
                    interrupted = spec.key
                else:
                    finished.append(spec.key)
                    log(f"[done] {spec.key}: {result['wall_s']:.1f} s, final eval {result['final_eval_loss']}")
                break
        if not ran or interrupted:
            break
    results = load_results(plan, out_dir)
    sched = schedule(plan, results)
    write_selections(plan, out_dir, sched)
    return {"finished": finished, "interrupted": interrupted, "skipped_for_time": skipped,
            "runnable": [r.key for r in sched.runnable if chosen.holds(r)], "waiting": sched.waiting,
            "blocked": sched.blocked, "piece_progress": progress(plan, results, piece),
            "plan_progress": progress(plan, results)}


def status_text(plan: Plan, out_dir: Path) -> str:
    results = load_results(plan, out_dir)
    sched = schedule(plan, results)
    lines = [progress_text(progress(plan, results))]
    lines += [f"  piece {name}: " + progress_text(progress(plan, results, name)).split(": ", 1)[1] for name in plan.pieces]
    lines.append(f"  {len(sched.runnable)} runs runnable now, {len(sched.waiting)} (corpus, method) sweeps unfinished, "
                 f"{len(sched.blocked)} blocked")
    for corpus, by_method in sched.selections.items():
        for method, sel in by_method.items():
            lines.append(f"  {corpus}/{method}: selected x{sel.lr_scale:g} — {sel.reason}" if sel.lr_scale
                         else f"  {corpus}/{method}: no selection — {sel.reason}")
    if sched.unused:
        lines.append(f"  {len(sched.unused)} result file(s) the plan no longer asks for: {', '.join(sched.unused[:4])}")
    return "\n".join(lines)


def _fit_check(plan: Plan, bench_path: str, out_dir: Path, device: torch.device):
    """The queue's expected run time on a CUDA device (:func:`paper_checks.gpu_lm.estimate.expected_seconds`);
    None on the CPU or without the bench file (every run is started; a cut-off run is checkpointed)."""
    if device.type != "cuda" or not Path(bench_path).exists():
        return None
    from .estimate import expected_seconds

    with open(bench_path) as fh:
        bench = json.load(fh)
    return expected_seconds(plan, bench, load_results(plan, out_dir), torch.cuda.get_device_name(device))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("run", "status", "corpus", "estimate", "report"))
    ap.add_argument("--plan", default="gpu", help="a plan name (paper_checks/gpu_lm/plans/) or a path")
    ap.add_argument("--piece", default=None, help="run/estimate: only this piece of the plan (the plan's 'pieces')")
    ap.add_argument("--out", default=None, help="results folder (default: results/gpu_lm/protocol/<plan>)")
    ap.add_argument("--ckpt", default=None, help="checkpoint folder (default: .protocol/ckpt/<plan>)")
    ap.add_argument("--seconds", type=float, default=None, help="run: stop (checkpointing) after this many seconds")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--corpus", action="append", help="run: only this corpus (repeatable)")
    ap.add_argument("--methods", default=None, help="run: only these methods (comma-separated)")
    ap.add_argument("--bench", default=str(ROOT / "results" / "bench" / "gpu_step.json"),
                    help="estimate, run on CUDA: the GPU bench the run times are estimated from")
    ap.add_argument("--measure-cpu", type=int, default=0, metavar="STEPS",
                    help="estimate: also time STEPS steps of each method on this CPU (plan's model, batch 1)")
    ap.add_argument("--write", action="store_true", help="estimate: write estimate.json into the results folder")
    args = ap.parse_args(argv)
    plan = load_plan(args.plan)
    out_dir = Path(args.out) if args.out else plan.out_dir()
    ckpt_dir = Path(args.ckpt) if args.ckpt else CKPT_ROOT / plan.name
    try:
        plan.piece(args.piece)
        if args.command == "corpus":
            for name, spec in plan.corpora.items():
                if spec["kind"] == "repo_text":
                    path = build_corpus(TextCorpusSpec.from_dict({k: v for k, v in spec.items() if k != "metric"}))
                    print(f"{name}: {path} ({spec['train_bytes']} + {spec['val_bytes']} bytes, sha256 {spec['sha256']})")
            return 0
        if args.command == "status":
            print(status_text(plan, out_dir))
            return 0
        if args.command == "report":
            from .analysis import write_report

            paths = write_report(plan, out_dir)
            print(Path(paths[-1]).read_text())
            return 0
        if args.command == "estimate":
            from .estimate import estimate_plan, estimate_text, measure_cpu_steps

            cpu = measure_cpu_steps(plan, args.measure_cpu) if args.measure_cpu else None
            with open(args.bench) as fh:
                est = estimate_plan(plan, json.load(fh), load_results(plan, out_dir), cpu_steps=cpu, piece=args.piece)
            print(estimate_text(est))
            if args.write:
                write_json(out_dir / ("estimate.json" if args.piece is None else f"estimate_{args.piece}.json"), est)
            return 0
        device = torch.device(args.device)
        summary = work(plan, out_dir=out_dir, ckpt_dir=ckpt_dir, device=device, seconds=args.seconds,
                       piece=args.piece, corpora=args.corpus, methods=args.methods.split(",") if args.methods else None,
                       expected_seconds=_fit_check(plan, args.bench, out_dir, device))
    except (StaleResult, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=1))
    print(progress_text(summary["plan_progress"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
