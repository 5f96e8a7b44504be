"""The validation protocol as data: a plan file, the runs it implies, and the learning-rate selection rule.

A plan (``plans/<name>.json``; ``gpu`` for the lent GPU machine, ``tiny`` for CPU tests) fixes, for every
method alike: the model, each corpus, the batch, the sequence length and the step budget (so the token
budget), the schedule (linear warm-up over ``warmup_fraction`` of the steps, cosine decay to 10 %: the
schedule of :func:`paper_checks.gpu_lm.train.lr_factor`), gradient clipping, the evaluation points and
the steps where gradient ranks are traced. Per corpus and method it implies two phases:

1. **sweep**: one seed (``sweep.seed``) at ``sweep.steps`` steps (a short budget with its own schedule),
   at the recipe's learning rate times each of ``sweep.multipliers`` (3–5 points around the paper's
   value, which is multiplier 1; MARS's ``lr_1d`` scales with it);
2. **final**: every seed of ``seeds`` at the full budget, at the multiplier the sweep selected.

**Selection rule** (:func:`select_lr`): among the sweep points that finished without diverging, take the
lowest value of the corpus's metric; every point within ``sweep.tie_tolerance`` nats of that lowest value
counts as tied, and among tied points the one nearest the paper's value (smallest ``|log multiplier|``;
then the smaller multiplier) is chosen. A choice at either end of the grid is flagged ``at_edge`` (the best
rate may lie outside). When every point diverged there is no choice and the final runs are blocked.

**Corpus metric**: ``"final"`` is the last evaluation's loss (the HMM language: fresh data every step);
``"best"`` is the lowest evaluation loss of the run (the repository text, small enough that a long run
passes over it many times and the validation loss turns up once the model memorises).

Every run has a **fingerprint** (:func:`fingerprint`): the sha256 of everything that determines it (model,
corpus pin, batch, schedule, evaluation, the method's recipe, the parameter routing its optimizer class
declares (``paper_routing``: a routing change makes the earlier runs stale, as it should), learning-rate
multiplier, seed, steps). Result files and checkpoints carry it; a result whose fingerprint differs from
what the plan implies now is stale and is refused (:class:`StaleResult`), never mixed in.

**Gradient ranks** are traced in the final runs only (at ``rank_at`` fractions of the budget); the sweep's
short runs only choose the rate.

**Pieces** (``pieces`` in the plan file): named filters (corpora, methods, phases) over the plan's runs, in
the order a limited GPU budget should take them (the first, ``pilot``, is the start of the plan, not a
separate experiment: its results are the plan's own). ``python -m paper_checks.gpu_lm.protocol run --piece
pilot`` runs only that piece's runs; the schedule, selections and analysis are always the whole plan's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from synthetic.llama import LlamaConfig

from .recipes import RECIPES

__all__ = ["Plan", "SweepSpec", "RunSpec", "Piece", "Selection", "Schedule", "StaleResult", "load_plan", "select_lr",
           "schedule", "fingerprint", "load_results", "progress", "PLANS_DIR", "RESULTS_DIR", "TINY_MODEL"]

PLANS_DIR = Path(__file__).resolve().parent / "plans"
RESULTS_DIR = Path(__file__).resolve().parents[2] / "results" / "gpu_lm" / "protocol"
MODELS = {"llama-60m": LlamaConfig(), "tiny": LlamaConfig(dim=64, layers=2, heads=4, ffn=176)}
TINY_MODEL = MODELS["tiny"]
CORPUS_KINDS = ("hmm", "repo_text")
METRICS = ("final", "best")
PHASES = ("sweep", "final")


class StaleResult(ValueError):
    """A saved result or checkpoint whose fingerprint is not the one the plan implies now."""


@dataclass(frozen=True)
class SweepSpec:
    multipliers: tuple[float, ...]
    steps: int
    seed: int
    tie_tolerance: float


@dataclass(frozen=True)
class Piece:
    """A named part of a plan: the runs whose corpus, method and phase are listed (empty: all)."""

    name: str
    corpora: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    phases: tuple[str, ...] = ()
    comment: str = ""

    def holds(self, spec: "RunSpec") -> bool:
        return ((not self.corpora or spec.corpus in self.corpora) and (not self.methods or spec.method in self.methods)
                and (not self.phases or spec.phase in self.phases))


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    model: str
    batch: int
    seq: int
    steps: int
    warmup_fraction: float
    clip: float
    eval_every: int
    eval_seqs: int
    rank_at: tuple[float, ...]  #: fractions of a run's steps where gradient ranks are traced
    checkpoint_every: int
    data_chunk: int  #: batches drawn per data-generator call (a chunk's generator is seeded by seed and chunk)
    rank: int | None  #: overrides every recipe's rank (tiny models), None: the recipes'
    refresh_gap: int | None  #: overrides every recipe's refresh gap, None: the recipes'
    methods: tuple[str, ...]
    baseline: str
    corpora: Mapping[str, Mapping[str, Any]]
    sweep: SweepSpec
    seeds: tuple[int, ...]
    alpha: float
    equivalence_margin: float  #: relative to the baseline's mean (a fraction of its loss)
    pieces: Mapping[str, Piece] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in RECIPES]
        if unknown:
            raise ValueError(f"plan {self.name}: methods {unknown} have no recipe; known: {sorted(RECIPES)}")
        if self.baseline not in self.methods:
            raise ValueError(f"plan {self.name}: the baseline {self.baseline!r} must be one of the methods")
        if self.model not in MODELS:
            raise ValueError(f"plan {self.name}: model must be one of {sorted(MODELS)}, got {self.model!r}")
        if not 0 < self.seq <= self.model_config.max_seq:
            raise ValueError(f"plan {self.name}: seq must be in 1..{self.model_config.max_seq}, got {self.seq}")
        for key in ("batch", "steps", "eval_every", "eval_seqs", "checkpoint_every", "data_chunk"):
            if not (isinstance(getattr(self, key), int) and getattr(self, key) > 0):
                raise ValueError(f"plan {self.name}: {key} must be a positive integer, got {getattr(self, key)!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"plan {self.name}: warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if not all(0 <= f <= 1 for f in self.rank_at):
            raise ValueError(f"plan {self.name}: rank_at holds fractions of the steps in [0, 1], got {self.rank_at}")
        for name, corpus in self.corpora.items():
            if corpus.get("kind") not in CORPUS_KINDS or corpus.get("metric") not in METRICS:
                raise ValueError(f"plan {self.name}: corpus {name!r} needs kind in {CORPUS_KINDS} and metric in "
                                 f"{METRICS}, got {corpus.get('kind')!r}, {corpus.get('metric')!r}")
        m = self.sweep.multipliers
        if not (3 <= len(m) <= 5 and 1.0 in m and len(set(m)) == len(m) and all(x > 0 for x in m)):
            raise ValueError(f"plan {self.name}: sweep.multipliers must be 3-5 distinct positive numbers including 1 "
                             f"(the paper's rate), got {m}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or self.sweep.seed in self.seeds:
            raise ValueError(f"plan {self.name}: seeds must be distinct and exclude the sweep's seed "
                             f"{self.sweep.seed} (the selection must not favour a final seed), got {self.seeds}")
        if not 0 < self.alpha < 0.5 or not self.equivalence_margin > 0:
            raise ValueError(f"plan {self.name}: alpha must be in (0, 0.5) and equivalence_margin positive")
        for piece in self.pieces.values():
            bad = ([c for c in piece.corpora if c not in self.corpora] + [m for m in piece.methods if m not in self.methods]
                   + [p for p in piece.phases if p not in PHASES])
            if bad:
                raise ValueError(f"plan {self.name}: piece {piece.name!r} names {bad}, which the plan does not have")

    def piece(self, name: str | None) -> Piece:
        """The named piece (None: the whole plan)."""
        if name is None:
            return Piece("all")
        if name not in self.pieces:
            raise ValueError(f"plan {self.name} has no piece {name!r}; pieces: {list(self.pieces)}")
        return self.pieces[name]

    @property
    def model_config(self) -> LlamaConfig:
        return MODELS[self.model]

    @property
    def tokens_per_step(self) -> int:
        return self.batch * self.seq

    def run_steps(self, phase: str) -> int:
        return self.sweep.steps if phase == "sweep" else self.steps

    def warmup(self, steps: int) -> int:
        return max(1, round(self.warmup_fraction * steps))

    def rank_steps(self, phase: str, steps: int) -> list[int]:
        """The (1-based) steps after whose backward pass the gradient ranks are traced (final runs only)."""
        if phase != "final":
            return []
        return sorted({max(1, round(f * steps)) for f in self.rank_at})

    def out_dir(self, root: str | Path = RESULTS_DIR) -> Path:
        return Path(root) / self.name


@dataclass(frozen=True)
class RunSpec:
    corpus: str
    method: str
    phase: str
    lr_scale: float
    seed: int
    steps: int

    @property
    def key(self) -> str:
        return f"{self.corpus}__{self.method}__{self.phase}__lr{self.lr_scale:g}__seed{self.seed}"


def load_plan(name_or_path: str | Path) -> Plan:
    """A plan by name (``plans/<name>.json``) or path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PLANS_DIR / f"{name_or_path}.json"
    if not path.exists():
        known = sorted(p.stem for p in PLANS_DIR.glob("*.json"))
        raise ValueError(f"no plan {name_or_path!r} (looked for {path}); known plans: {known}")
    data = json.loads(path.read_text())
    data.pop("comment", None)
    fields = {f.name for f in dataclasses.fields(Plan)}
    extra = sorted(set(data) - fields)
    if extra:
        raise ValueError(f"plan {path}: unknown keys {extra}")
    raw_sweep = data.pop("sweep")
    pieces = {name: Piece(name, **{k: tuple(v) if isinstance(v, list) else v for k, v in p.items()})
              for name, p in data.pop("pieces", {}).items()}
    sweep = SweepSpec(tuple(float(x) for x in raw_sweep["multipliers"]), int(raw_sweep["steps"]), int(raw_sweep["seed"]),
                      float(raw_sweep["tie_tolerance"]))
    return Plan(**{**data, "sweep": sweep, "rank_at": tuple(data["rank_at"]), "methods": tuple(data["methods"]),
                   "seeds": tuple(data["seeds"]), "pieces": pieces})


def fingerprint(plan: Plan, spec: RunSpec) -> str:
    """sha256 of everything that determines the run (module docstring)."""
    import algorithms

    recipe = RECIPES[spec.method]
    routing = algorithms.REGISTRY[recipe["registry"]].paper_routing
    content = {
        "model": dataclasses.asdict(plan.model_config), "corpus": dict(plan.corpora[spec.corpus]),
        "batch": plan.batch, "seq": plan.seq, "steps": spec.steps, "warmup": plan.warmup(spec.steps),
        "clip": plan.clip, "eval_every": plan.eval_every, "eval_seqs": plan.eval_seqs,
        "rank_steps": plan.rank_steps(spec.phase, spec.steps), "data_chunk": plan.data_chunk, "rank": plan.rank,
        "refresh_gap": plan.refresh_gap,
        "recipe": {k: recipe[k] for k in ("registry", "lr", "hyper", "group")},
        "routing": {"rule": routing.rule, "method": dict(routing.method), "dense": dict(routing.dense),
                    "rank_option": routing.rank_option},
        "lr_scale": spec.lr_scale, "seed": spec.seed,
    }
    text = json.dumps(content, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Selection:
    lr_scale: float | None
    at_edge: bool
    reason: str
    points: tuple[tuple[float, float | None], ...]  #: (multiplier, metric or None when it diverged)

    def to_dict(self) -> dict:
        return {"lr_scale": self.lr_scale, "at_edge": self.at_edge, "reason": self.reason,
                "points": [{"lr_scale": m, "metric": v} for m, v in self.points]}


def select_lr(points: Mapping[float, float | None], tie_tolerance: float) -> Selection:
    """The selection rule of the module docstring. ``points`` maps each multiplier to its metric, or to
    None when the run diverged (a non-finite value counts as diverged)."""
    if not points:
        raise ValueError("select_lr needs at least one sweep point")
    if not (math.isfinite(tie_tolerance) and tie_tolerance >= 0):
        raise ValueError(f"tie_tolerance must be finite and >= 0, got {tie_tolerance}")
    table = tuple(sorted((float(m), None if v is None or not math.isfinite(v) else float(v)) for m, v in points.items()))
    finite = [(m, v) for m, v in table if v is not None]
    if not finite:
        return Selection(None, False, "every sweep point diverged", table)
    best = min(v for _, v in finite)
    tied = [m for m, v in finite if v <= best + tie_tolerance]
    chosen = min(tied, key=lambda m: (abs(math.log(m)), m))
    at_edge = chosen in (table[0][0], table[-1][0])
    reason = (f"lowest metric {best:.4f} at x{min(finite, key=lambda mv: mv[1])[0]:g}; "
              f"{len(tied)} point(s) within {tie_tolerance:g} nats, nearest the paper's rate: x{chosen:g}"
              + ("; at the edge of the grid" if at_edge else ""))
    return Selection(chosen, at_edge, reason, table)


def run_metric(result: Mapping[str, Any], metric: str) -> float | None:
    """A run's value of the corpus metric, None when it diverged or has no finite evaluation."""
    if result.get("diverged"):
        return None
    values = [c["eval_loss"] for c in result.get("curve", []) if c.get("eval_loss") is not None]
    if not values or not all(math.isfinite(v) for v in values):
        return None
    return values[-1] if metric == "final" else min(values)


@dataclass
class Schedule:
    runnable: list[RunSpec]  #: in plan order: corpus, then method, sweep before final
    done: dict[str, RunSpec]
    waiting: list[str]  #: (corpus, method) pairs whose sweep is not finished
    blocked: list[str]  #: pairs whose sweep diverged everywhere
    selections: dict[str, dict[str, Selection]]
    unused: list[str]  #: result keys the plan does not ask for (e.g. final runs at a rate no longer selected)

    @property
    def complete(self) -> bool:
        return not self.runnable and not self.waiting


def sweep_runs(plan: Plan, corpus: str, method: str) -> list[RunSpec]:
    return [RunSpec(corpus, method, "sweep", m, plan.sweep.seed, plan.sweep.steps) for m in plan.sweep.multipliers]


def final_runs(plan: Plan, corpus: str, method: str, lr_scale: float) -> list[RunSpec]:
    return [RunSpec(corpus, method, "final", lr_scale, s, plan.steps) for s in plan.seeds]


def schedule(plan: Plan, results: Mapping[str, Mapping[str, Any]]) -> Schedule:
    """Which runs are finished, which can run now, and the selections made so far."""
    out = Schedule([], {}, [], [], {}, [])
    for corpus, spec in plan.corpora.items():
        out.selections[corpus] = {}
        for method in plan.methods:
            sweep = sweep_runs(plan, corpus, method)
            missing = [r for r in sweep if r.key not in results]
            out.runnable += missing
            out.done.update({r.key: r for r in sweep if r.key in results})
            if missing:
                out.waiting.append(f"{corpus}/{method}")
                continue
            sel = select_lr({r.lr_scale: run_metric(results[r.key], spec["metric"]) for r in sweep},
                            plan.sweep.tie_tolerance)
            out.selections[corpus][method] = sel
            if sel.lr_scale is None:
                out.blocked.append(f"{corpus}/{method}")
                continue
            for r in final_runs(plan, corpus, method, sel.lr_scale):
                if r.key in results:
                    out.done[r.key] = r
                else:
                    out.runnable.append(r)
    out.unused = sorted(set(results) - set(out.done))
    return out


def load_results(plan: Plan, out_dir: str | Path | None = None) -> dict[str, dict]:
    """``{key: result}`` of the finished runs under ``out_dir/runs`` (default: the plan's results folder);
    a result whose fingerprint differs from what the plan implies for it now raises :class:`StaleResult`."""
    runs = Path(out_dir or plan.out_dir()) / "runs"
    results, stale = {}, []
    for path in sorted(runs.glob("*.json")) if runs.is_dir() else []:
        with open(path) as fh:
            result = json.load(fh)
        spec = RunSpec(**{k: result[k] for k in ("corpus", "method", "phase", "lr_scale", "seed", "steps")})
        if spec.corpus not in plan.corpora or spec.method not in plan.methods:
            stale.append(f"{path.name} (corpus or method not in plan {plan.name})")
        elif result.get("fingerprint") != fingerprint(plan, spec):
            stale.append(f"{path.name} (fingerprint differs: the plan or the method's recipe changed)")
        else:
            results[spec.key] = result
    if stale:
        raise StaleResult(f"{len(stale)} stale result file(s) in {runs}: {'; '.join(stale[:5])}"
                          + ("; ..." if len(stale) > 5 else ""))
    return results


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (a reader never sees half a file; parallel workers may write the same file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, default=str, allow_nan=False) + "\n")
    os.replace(tmp, path)


def planned_runs(plan: Plan) -> list[tuple[str, str, str, float | None, int, int]]:
    """Every run the plan asks for, as ``(corpus, method, phase, multiplier, seed, steps)``; the multiplier of a
    final run is None (the sweep chooses it), so the count does not depend on the selections."""
    out = []
    for corpus in plan.corpora:
        for method in plan.methods:
            out += [(corpus, method, "sweep", m, plan.sweep.seed, plan.sweep.steps) for m in plan.sweep.multipliers]
            out += [(corpus, method, "final", None, s, plan.steps) for s in plan.seeds]
    return out


def progress(plan: Plan, results: Mapping[str, Mapping[str, Any]], piece: str | None = None) -> dict:
    """How much of the plan (or of one piece) has run: runs and training tokens, done and planned, per phase."""
    sched = schedule(plan, results)
    chosen = plan.piece(piece)
    done_keys = {(s.corpus, s.method, s.phase, s.lr_scale if s.phase == "sweep" else None, s.seed)
                 for s in sched.done.values()}
    out: dict[str, Any] = {"plan": plan.name, "piece": chosen.name, "phases": {}}
    for corpus, method, phase, scale, seed, steps in planned_runs(plan):
        if not chosen.holds(RunSpec(corpus, method, phase, scale or 1.0, seed, steps)):
            continue
        row = out["phases"].setdefault(phase, {"runs_done": 0, "runs_planned": 0, "tokens_done": 0, "tokens_planned": 0})
        row["runs_planned"] += 1
        row["tokens_planned"] += steps * plan.tokens_per_step
        if (corpus, method, phase, scale, seed) in done_keys:
            row["runs_done"] += 1
            row["tokens_done"] += steps * plan.tokens_per_step
    for key in ("runs_done", "runs_planned", "tokens_done", "tokens_planned"):
        out[key] = sum(row[key] for row in out["phases"].values())
    out["complete"] = out["runs_done"] == out["runs_planned"]
    return out


def progress_text(p: Mapping[str, Any]) -> str:
    parts = ", ".join(f"{phase} {row['runs_done']}/{row['runs_planned']}" for phase, row in p["phases"].items())
    return (f"plan {p['plan']}{'' if p['piece'] == 'all' else ' piece ' + p['piece']}: {p['runs_done']} of "
            f"{p['runs_planned']} runs done ({parts}); {p['tokens_done'] / 1e6:,.1f}M of "
            f"{p['tokens_planned'] / 1e6:,.1f}M training tokens")
