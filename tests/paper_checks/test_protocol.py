"""The GPU validation protocol on the CPU (plans/tiny.json): the selection rule, the schedule, bit-exact resume,
the time-limited queue, stale results, and verdicts that never decide on missing, NaN or too few runs."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from paper_checks.gpu_lm import analysis, protocol
from paper_checks.gpu_lm.plan import (RunSpec, StaleResult, load_plan, load_results, progress, schedule, select_lr)

PLAN = load_plan("tiny")


def hmm_only(plan=PLAN, **changes):
    return dataclasses.replace(plan, corpora={"hmm": plan.corpora["hmm"]}, pieces={}, **changes)


# ---- the selection rule ----------------------------------------------------------------------------------------

def test_selection_takes_the_lowest_and_breaks_ties_towards_the_papers_rate():
    sel = select_lr({0.5: 3.0, 1.0: 2.9, 2.0: 2.5}, tie_tolerance=0.01)
    assert sel.lr_scale == 2.0 and sel.at_edge
    sel = select_lr({0.5: 2.500, 1.0: 2.504, 2.0: 2.9}, tie_tolerance=0.005)
    assert sel.lr_scale == 1.0 and not sel.at_edge  # tied within 0.005: the paper's rate wins


def test_selection_skips_diverged_points_and_blocks_when_all_diverged():
    assert select_lr({0.5: 3.0, 1.0: None, 2.0: float("nan")}, 0.0).lr_scale == 0.5
    sel = select_lr({0.5: None, 1.0: float("inf"), 2.0: None}, 0.0)
    assert sel.lr_scale is None and "diverged" in sel.reason


# ---- synthetic results for the analysis ------------------------------------------------------------------------

def fake_result(spec: RunSpec, final: float, *, diverged=False, device="cpu-test") -> dict:
    steps = spec.steps
    curve = [{"step": s, "tokens": s * PLAN.tokens_per_step, "train_loss": final + 1.0 / s,
              "eval_loss": final + 0.5 * (steps - s) / steps, "gap": None} for s in range(PLAN.eval_every, steps + 1,
                                                                                           PLAN.eval_every)]
    return {**dataclasses.asdict(spec), "key": spec.key, "curve": curve, "diverged": diverged, "h_star": 2.0,
            "lr": 1e-3 * spec.lr_scale, "grad_rank": [], "optimizer_state_bytes": 100, "mean_step_s": 0.1,
            "tokens_per_s": 1000.0, "device": {"name": device, "type": "cpu"}}


def fill(plan, finals: dict[str, list[float | None]], sweep_best=1.0) -> dict:
    """Sweeps select ``sweep_best`` for every method; ``finals[method]`` gives each seed's final loss (None: no run)."""
    results = {}
    for corpus in plan.corpora:
        for method in plan.methods:
            for m in plan.sweep.multipliers:
                spec = RunSpec(corpus, method, "sweep", m, plan.sweep.seed, plan.sweep.steps)
                results[spec.key] = fake_result(spec, 3.0 if m == sweep_best else 3.5)
            for seed, value in zip(plan.seeds, finals.get(method, [])):
                if value is None:
                    continue
                spec = RunSpec(corpus, method, "final", sweep_best, seed, plan.steps)
                res = fake_result(spec, value)
                if not math.isfinite(value):
                    res["diverged"] = True
                results[spec.key] = res
    return results


CLEAR = {"adam": [3.00, 3.01, 2.995], "mars_adamw": [2.80, 2.805, 2.795]}


def test_a_planted_clear_improvement_passes_and_its_reverse_fails():
    plan = hmm_only()
    out = analysis.compare(plan, fill(plan, CLEAR), "hmm", "mars_adamw", "adam", "lower")
    assert out["outcome"] == "PASS" and out["numbers"]["p"] < plan.alpha
    assert out["numbers"]["seeds_reaching"] == 3 and out["numbers"]["steps_to_baseline"] < plan.steps
    worse = {"adam": CLEAR["mars_adamw"], "mars_adamw": CLEAR["adam"]}
    assert analysis.compare(plan, fill(plan, worse), "hmm", "mars_adamw", "adam", "lower")["outcome"] == "FAIL"


def test_identical_runs_do_not_decide_a_difference():
    plan = hmm_only()
    same = {"adam": CLEAR["adam"], "mars_adamw": list(CLEAR["adam"])}
    out = analysis.compare(plan, fill(plan, same), "hmm", "mars_adamw", "adam", "lower")
    assert out["outcome"] == "INCONCLUSIVE" and out["numbers"]["p"] == 1.0


@pytest.mark.parametrize("broken, why", [
    ({"mars_adamw": [2.80, None, 2.795]}, "2 of 3 final seeds"),       # a seed missing
    ({"mars_adamw": []}, "0 of 3 final seeds"),                        # none run
    ({"mars_adamw": [2.80, float("nan"), 2.795]}, "diverged in 1 of 3"),  # a NaN seed
])
def test_missing_or_nan_runs_never_yield_a_decision(broken, why):
    plan = hmm_only()
    out = analysis.compare(plan, fill(plan, {**CLEAR, **broken}), "hmm", "mars_adamw", "adam", "lower")
    assert out["outcome"] == "INCONCLUSIVE" and why in out["reason"]


def test_an_unfinished_sweep_never_yields_a_decision():
    plan = hmm_only()
    results = fill(plan, CLEAR)
    del results[RunSpec("hmm", "adam", "sweep", 0.5, plan.sweep.seed, plan.sweep.steps).key]
    out = analysis.compare(plan, results, "hmm", "mars_adamw", "adam", "lower")
    assert out["outcome"] == "INCONCLUSIVE" and "sweep of adam on hmm is unfinished (2/3" in out["reason"]


def test_equivalence_claims_decide_only_with_a_tight_interval():
    plan = hmm_only()
    close = {"adam": [3.000, 3.001, 2.999], "ldadam": [3.0005, 3.0012, 2.9995]}
    assert analysis.compare(plan, fill(plan, close), "hmm", "ldadam", "adam", "equivalent")["outcome"] == "PASS"
    far = {"adam": close["adam"], "ldadam": [3.200, 3.201, 3.199]}
    assert analysis.compare(plan, fill(plan, far), "hmm", "ldadam", "adam", "equivalent")["outcome"] == "FAIL"


def test_progress_counts_runs_and_tokens_of_the_plan_and_of_a_piece():
    results = fill(PLAN, CLEAR)
    p = progress(PLAN, results)
    assert p["runs_planned"] == len(PLAN.corpora) * len(PLAN.methods) * (len(PLAN.sweep.multipliers) + len(PLAN.seeds))
    assert p["phases"]["sweep"]["runs_done"] == p["phases"]["sweep"]["runs_planned"] and not p["complete"]
    assert p["phases"]["final"]["runs_done"] == 2 * 2 * 3  # two methods, two corpora, three seeds
    pilot = progress(PLAN, results, "pilot")
    assert pilot["runs_planned"] == 4 * len(PLAN.sweep.multipliers) and pilot["complete"]


# ---- real runs on the tiny plan --------------------------------------------------------------------------------

def tiny_spec(method="galore_adamw", phase="final", steps=None):
    return RunSpec("hmm", method, phase, 1.0, PLAN.seeds[0], steps or PLAN.steps)


@pytest.mark.parametrize("method", ["galore_adamw", "adam_sn_sm", "mars_adamw"])
def test_resumed_run_equals_the_uninterrupted_one_bit_for_bit(tmp_path, method):
    plan = hmm_only()
    stream = protocol.make_stream(plan, "hmm", torch.device("cpu"))
    spec = tiny_spec(method)
    quiet = dict(device=torch.device("cpu"), log=lambda msg: None)
    whole = protocol.train_run(plan, spec, stream, out_dir=tmp_path / "a", ckpt_dir=tmp_path / "ca", **quiet)
    cut = protocol.train_run(plan, spec, stream, out_dir=tmp_path / "b", ckpt_dir=tmp_path / "cb", stop_at=13, **quiet)
    assert cut is None and (tmp_path / "cb" / f"{spec.key}.pt").exists()  # 13: between checkpoints and refreshes
    resumed = protocol.train_run(plan, spec, stream, out_dir=tmp_path / "b", ckpt_dir=tmp_path / "cb", **quiet)
    assert resumed["param_sha256"] == whole["param_sha256"]
    assert [c["eval_loss"] for c in resumed["curve"]] == [c["eval_loss"] for c in whole["curve"]]
    assert resumed["grad_rank"] == whole["grad_rank"] and resumed["calls"] == 2
    assert not (tmp_path / "cb" / f"{spec.key}.pt").exists()  # a finished run drops its checkpoint


def test_a_checkpoint_of_another_run_version_is_refused(tmp_path):
    plan = hmm_only()
    stream = protocol.make_stream(plan, "hmm", torch.device("cpu"))
    spec = tiny_spec("adam")
    kw = dict(out_dir=tmp_path, ckpt_dir=tmp_path / "ck", device=torch.device("cpu"), log=lambda msg: None)
    protocol.train_run(plan, spec, stream, stop_at=5, **kw)
    changed = dataclasses.replace(plan, clip=0.5)
    with pytest.raises(StaleResult, match="fingerprint"):
        protocol.train_run(changed, spec, stream, **kw)


class Clock:
    """``time.time`` that advances ``tick`` seconds a call: a deadline reached after a known amount of work."""

    def __init__(self, tick):
        self.now, self.tick = 1000.0, tick

    def __call__(self):
        self.now += self.tick
        return self.now


def test_the_queue_stops_cleanly_at_its_time_limit_and_the_next_call_finishes(tmp_path, monkeypatch):
    plan = hmm_only(methods=("adam", "galore_adamw"))
    kw = dict(out_dir=tmp_path / "r", ckpt_dir=tmp_path / "ck", device=torch.device("cpu"), log=lambda msg: None)
    monkeypatch.setattr(protocol.time, "time", Clock(1.0))
    first = protocol.work(plan, seconds=60, min_start_s=0, **kw)
    assert first["interrupted"] and first["finished"]  # some runs finished, one cut off and checkpointed
    assert (tmp_path / "ck" / f"{first['interrupted']}.pt").exists()
    monkeypatch.undo()
    second = protocol.work(plan, **kw)
    assert second["interrupted"] is None and second["plan_progress"]["complete"]
    results = load_results(plan, tmp_path / "r")
    assert len(results) == len(plan.methods) * (len(plan.sweep.multipliers) + len(plan.seeds))
    cut = results[first["interrupted"]]
    assert cut["calls"] == 2 and all(math.isfinite(c["eval_loss"]) for c in cut["curve"])
    assert json.loads((tmp_path / "r" / "selected_lr.json").read_text())["selections"]["hmm"]["adam"]["lr_scale"]


def test_the_queue_starts_only_runs_that_fit_and_only_the_pieces_runs(tmp_path):
    plan = hmm_only(methods=("adam", "galore_adamw"))
    kw = dict(out_dir=tmp_path / "r", ckpt_dir=tmp_path / "ck", device=torch.device("cpu"), log=lambda msg: None)
    none = protocol.work(plan, seconds=100, min_start_s=0, expected_seconds=lambda spec: 1e6, **kw)
    assert not none["finished"] and len(none["skipped_for_time"]) == len(plan.sweep.multipliers) * 2
    from paper_checks.gpu_lm.plan import Piece

    plan = dataclasses.replace(plan, pieces={"p": Piece("p", methods=("galore_adamw",), phases=("sweep",))})
    some = protocol.work(plan, piece="p", **kw)
    assert sorted(some["finished"]) == sorted(r.key for r in schedule(plan, {}).runnable if r.method == "galore_adamw")
    assert some["piece_progress"]["complete"] and not some["plan_progress"]["complete"]


def test_a_stale_result_is_refused_never_mixed_in(tmp_path):
    plan = hmm_only(methods=("adam",))
    protocol.work(plan, out_dir=tmp_path, ckpt_dir=tmp_path / "ck", device=torch.device("cpu"), methods=["adam"],
                  log=lambda msg: None)
    assert load_results(plan, tmp_path)
    with pytest.raises(StaleResult, match="fingerprint differs"):
        load_results(dataclasses.replace(plan, batch=plan.batch + 1), tmp_path)
    path = next((tmp_path / "runs").glob("*.json"))
    data = json.loads(path.read_text())
    data["fingerprint"] = "0" * 64
    path.write_text(json.dumps(data))
    with pytest.raises(StaleResult):
        load_results(plan, tmp_path)


def test_the_fingerprint_includes_the_class_routing(monkeypatch):
    import algorithms
    from algorithms.grouping import Routing
    from paper_checks.gpu_lm.plan import fingerprint

    spec = tiny_spec("adam_sn")
    before = fingerprint(PLAN, spec)
    monkeypatch.setattr(algorithms.REGISTRY["adam_sn"], "paper_routing", Routing("single"))
    assert fingerprint(PLAN, spec) != before


def test_plan_validation_names_the_problem():
    with pytest.raises(ValueError, match="including 1"):
        dataclasses.replace(PLAN, sweep=dataclasses.replace(PLAN.sweep, multipliers=(0.5, 2.0, 4.0)))
    with pytest.raises(ValueError, match="exclude the sweep's seed"):
        dataclasses.replace(PLAN, seeds=(0, 1, 2))
    with pytest.raises(ValueError, match="no piece"):
        PLAN.piece("nonexistent")


# ---- the text corpus -------------------------------------------------------------------------------------------

def _git_repo(path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True)

    path.mkdir()
    git("init", "-q")
    for name, text in {"a.py": "x = 1\n", "docs/b.md": "# title\n", "c.txt": "not selected\n",
                       "results/r.md": "excluded\n", **{f"m{i}.md": f"doc {i}\n" for i in range(12)}}.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "corpus")
    import subprocess as sp

    return sp.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def test_the_corpus_is_pinned_by_hash_and_a_mismatch_is_refused(tmp_path):
    import hashlib

    from paper_checks.gpu_lm.corpus import CorpusMismatch, TextCorpusSpec, build_corpus, corpus_bytes, load_corpus

    repo = tmp_path / "repo"
    commit = _git_repo(repo)
    (repo / "a.py").write_text("uncommitted edit\n")  # the working tree never leaks in
    probe = TextCorpusSpec(commit, "0" * 64, 0, 0)
    train, val = corpus_bytes(repo, probe)
    assert b"uncommitted" not in train + val and b"not selected" not in train + val and b"excluded" not in train + val
    assert (train + val).count(b"\x00") == 14 and val  # 14 selected files, some in validation
    spec = TextCorpusSpec(commit, hashlib.sha256(train + val).hexdigest(), len(train), len(val))
    cache = build_corpus(spec, repo, tmp_path / "cache")
    corpus = load_corpus(spec, tmp_path / "nowhere", tmp_path / "cache")  # from the cache alone (no git)
    assert bytes(corpus.train.numpy()) == train and bytes(corpus.val.numpy()) == val
    with pytest.raises(CorpusMismatch, match="not the pinned one"):
        build_corpus(dataclasses.replace(spec, sha256="1" * 64), repo, tmp_path / "other")
    data = bytearray(cache.read_bytes())
    data[3] ^= 1
    cache.write_bytes(bytes(data))
    with pytest.raises(CorpusMismatch, match="not the pinned one"):
        load_corpus(spec, repo, tmp_path / "cache")


def test_the_plans_corpus_pin_matches_this_repository_where_its_history_is_present():
    from paper_checks.gpu_lm.corpus import CACHE_DIR, CorpusMismatch, TextCorpusSpec, load_corpus

    spec = TextCorpusSpec.from_dict({k: v for k, v in PLAN.corpora["repo_text"].items() if k != "metric"})
    try:
        corpus = load_corpus(spec, cache_dir=CACHE_DIR if (CACHE_DIR / spec.cache_name).exists() else None)
    except CorpusMismatch as exc:
        if "failed" in str(exc) or "not installed" in str(exc):
            pytest.skip(f"the pinned commit is not in this clone's history: {exc}")
        raise
    assert corpus.train.numel() == spec.train_bytes and corpus.val.numel() == spec.val_bytes


def test_figures_and_report_come_from_the_saved_runs_alone(tmp_path):
    from paper_checks.gpu_lm.figures import protocol_figures

    plan = hmm_only(methods=("adam",))
    protocol.work(plan, out_dir=tmp_path / "tiny", ckpt_dir=tmp_path / "ck", device=torch.device("cpu"),
                  log=lambda msg: None)
    paths = protocol_figures(tmp_path, None)
    assert [p.name for p in paths] == ["protocol_hmm.png"] and paths[0].stat().st_size > 10_000
    summary, report = analysis.write_report(PLAN, tmp_path / "tiny")
    text = report.read_text()
    assert "incomplete until the rest of the plan runs" in text and "6 of 96 runs done" in text
    data = json.loads(summary.read_text())
    assert all(v["outcome"] == "INCONCLUSIVE" for v in data["verdicts"])  # no method's final runs besides adam's


def test_the_estimate_covers_the_plan_and_its_pieces_and_calibrates_on_measured_runs():
    from paper_checks.gpu_lm.estimate import estimate_plan, expected_seconds, spec_seconds

    gpu = load_plan("gpu")
    bench = json.loads((protocol.ROOT / "results" / "bench" / "gpu_step.json").read_text())
    whole = estimate_plan(gpu, bench)
    assert whole["runs"] == 2 * 8 * (5 + 3) and whole["tokens_total"] == 2 * 8 * (5 * 640 + 3 * 3072) * 64 * 256
    pilot = estimate_plan(gpu, bench, piece="pilot")
    assert pilot["runs"] == 20 and 0 < pilot["gpu_seconds"] < whole["gpu_seconds"] / 5
    spec = RunSpec("hmm", "adam", "sweep", 1.0, 0, gpu.sweep.steps)
    measured = {spec.key: {**dataclasses.asdict(spec), "wall_s": 2 * spec_seconds(gpu, bench, spec), "diverged": False,
                           "device": {"name": "H", "type": "cuda"}}}
    later = RunSpec("hmm", "adam", "sweep", 2.0, 0, gpu.sweep.steps)
    fit = expected_seconds(gpu, bench, measured, "H")
    fit(spec)  # the first run of a call carries the start-up time
    assert fit(later) == pytest.approx(2.2 * spec_seconds(gpu, bench, later))
