r"""The oracle for distributed implementations: the candidate runs under ``torch.distributed`` on N
processes, the reference in one process in float64.

    verify oracle --nproc 2 --reference galore_adamw --candidate mypkg:ShardedGaLore --strict
    compare_distributed("galore_adamw", "mypkg:ShardedGaLore", nproc=2, layout="fsdp2", strict=True)

**Layouts** (how each rank holds the candidate's parameters):

``"fsdp2"`` (default)
    every parameter with at least one dimension is a ``DTensor`` sharded on its first dimension over a
    1-D mesh of all ranks (``Shard(0)``, uneven where the size does not divide, the placement
    ``torch.distributed.fsdp.fully_shard`` gives parameters and gradients); a 0-D parameter is
    replicated. Each step every rank's gradient is its shard of the full gradient.
``"ddp"``
    every rank holds the whole parameter (a plain tensor) and the same gradient, as after DDP's
    all-reduce; the parameters must then be **bit-identical on every rank** after every step.

**What is compared.** After every step each parameter is gathered (``DTensor.full_tensor()``; a plain
tensor is taken from every rank and must be the same on all of them) and compared with the float64
reference exactly as :func:`verify.oracle.compare` does (same defaults, tolerances, report). The
mapped state tensors are gathered the same way: a ``DTensor`` state (sharded or replicated) is
assembled, a plain-tensor state must be identical on every rank (a replicated quantity that ranks
compute differently is a failure naming the ranks). A ``step()`` that raises on any rank is a failure
at that step on every rank (the ranks agree on it before any collective, so none hangs).

**How it runs.** Every rank runs the whole comparison (the reference is cheap and deterministic,
and gathering with all-gathers gives every rank the same values), so every rank returns the same
report. Called from a process that already belongs to a process group (e.g. under ``torchrun``), it
uses that group; otherwise it starts ``nproc`` processes (``spawn``), with ``gloo`` on CPU and
``nccl`` on CUDA, on a loopback rendezvous, bounded by ``timeout`` seconds, and returns rank 0's report.
A candidate given as a class or function must be importable by the spawned processes (defined in a
module, not in ``__main__``); ``"module:attr"`` always is.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import tempfile
import time
from datetime import timedelta
from typing import Any, Sequence

import torch

from .errors import OracleInputError
from .report import OracleReport

__all__ = ["LAYOUTS", "compare_distributed", "run_on_ranks", "DistributedLayout", "CandidateStepError"]

LAYOUTS = ("fsdp2", "ddp")


class CandidateStepError(RuntimeError):
    """A rank's ``step()`` raised, or the ranks disagree on a replicated value (raised on every rank)."""


def _dist():
    import torch.distributed as dist

    return dist


class DistributedLayout:
    """Places the candidate's parameters on the ranks and presents gathered views to the comparison loop."""

    def __init__(self, layout: str, device: torch.device) -> None:
        if layout not in LAYOUTS:
            raise OracleInputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        dist = _dist()
        self.layout = layout
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = device
        from torch.distributed.device_mesh import init_device_mesh

        self.mesh = init_device_mesh(device.type, (self.world,))

    def describe(self) -> str:
        how = ("parameters sharded on dim 0 (DTensor Shard(0), 0-D replicated)" if self.layout == "fsdp2"
               else "parameters replicated (DDP), bit-identical on every rank")
        return f"distributed: {self.world} ranks ({_dist().get_backend()}), {how}"

    # ------------------------------------------------------------------ placement
    def _placements(self, t: torch.Tensor):
        from torch.distributed.tensor import Replicate, Shard

        return [Shard(0)] if t.dim() >= 1 else [Replicate()]

    def place(self, full: torch.Tensor) -> torch.Tensor:
        """This rank's version of a full tensor (all ranks pass the same one)."""
        if self.layout == "ddp":
            return full.detach().clone()
        from torch.distributed.tensor import distribute_tensor

        return distribute_tensor(full.detach(), self.mesh, self._placements(full), src_data_rank=None)

    def place_params(self, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [torch.nn.Parameter(self.place(p), requires_grad=True) for p in params]

    # ------------------------------------------------------------------ gathering
    def gather(self, value: torch.Tensor, what: str) -> torch.Tensor:
        """The full value on every rank: a DTensor is assembled, a plain tensor must agree on all ranks."""
        from torch.distributed.tensor import DTensor

        if isinstance(value, DTensor):
            return value.full_tensor().detach()
        value = value.detach()
        everyone: list[Any] = [None] * self.world
        _dist().all_gather_object(everyone, value.cpu())
        for r, other in enumerate(everyone[1:], start=1):
            if other.shape != everyone[0].shape or other.dtype != everyone[0].dtype or not torch.equal(
                    other, everyone[0]) and not (other.isnan().any() and torch.equal(other.isnan(), everyone[0].isnan())):
                raise CandidateStepError(
                    f"{what} differs between rank 0 and rank {r} (a plain tensor, so each rank holds its own copy; "
                    f"shapes {tuple(everyone[0].shape)} and {tuple(other.shape)})")
        return value

    def agree(self, local_error: str | None) -> None:
        """Raise on every rank when any rank had ``local_error`` (called before any other collective)."""
        errors: list[Any] = [None] * self.world
        _dist().all_gather_object(errors, local_error)
        bad = [(r, e) for r, e in enumerate(errors) if e is not None]
        if bad:
            r, e = bad[0]
            raise CandidateStepError(f"on rank {r}: {e}")

    def view(self, opt: Any, params: Sequence[torch.Tensor], state_keys: Sequence[str]) -> tuple["_GatheredOptimizer", list[torch.Tensor]]:
        views = [torch.zeros(p.shape, dtype=p.dtype, device=self.device).requires_grad_() for p in params]
        gathered = _GatheredOptimizer(self, opt, list(params), views, list(state_keys))
        gathered.refresh()
        return gathered, views


class _GatheredOptimizer:
    """What :func:`verify.oracle.engine.run_comparison` sees: ``step()`` steps the real candidate on every
    rank from the full gradients set on the views; ``state`` holds the gathered mapped state tensors."""

    def __init__(self, layout: DistributedLayout, opt: Any, params: list[torch.Tensor], views: list[torch.Tensor],
                 state_keys: list[str]) -> None:
        self.layout, self.opt, self.params, self.views, self.state_keys = layout, opt, params, views, state_keys
        self.state: dict[torch.Tensor, dict[str, Any]] = {}
        self.param_groups = opt.param_groups

    def step(self, closure=None):
        error = None
        try:
            for p, v in zip(self.params, self.views):
                p.grad = None if v.grad is None else self.layout.place(v.grad.to(p.dtype))
            self.opt.step()
        except Exception as exc:  # the candidate's own code
            error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        self.layout.agree(error)
        self.refresh()

    def refresh(self) -> None:
        with torch.no_grad():
            for i, (p, v) in enumerate(zip(self.params, self.views)):
                v.copy_(self.layout.gather(p, f"parameter {i}"))
        self.state = {}
        for i, (p, v) in enumerate(zip(self.params, self.views)):
            local = self.opt.state.get(p, {})
            keys = [k for k in self.state_keys if isinstance(local.get(k), torch.Tensor)]
            everyone: list[Any] = [None] * self.layout.world
            _dist().all_gather_object(everyone, keys)
            if any(k != keys for k in everyone):
                raise CandidateStepError(f"the ranks hold different state keys for parameter {i}: "
                                         + "; ".join(f"rank {r}: {k}" for r, k in enumerate(everyone)))
            state = {k: v2 for k, v2 in local.items() if not isinstance(v2, torch.Tensor)}
            for k in keys:
                state[k] = self.layout.gather(local[k], f"state {k!r} of parameter {i}")
            self.state[v] = state


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _backend(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def _run_here(reference: str, candidate: Any, layout: str, options: dict[str, Any]) -> OracleReport:
    from .compare import compare

    device = torch.device(options.get("device", "cpu"))
    if device.type == "cuda":
        device = torch.device("cuda", _dist().get_rank() % max(1, torch.cuda.device_count()))
        torch.cuda.set_device(device)
        options = {**options, "device": device}
    return compare(reference, candidate, _layout=DistributedLayout(layout, device), **options)


def _rank_main(rank: int, world: int, port: int, out: str, backend: str, timeout: float, fn: Any, args: tuple,
               kwargs: dict) -> None:
    dist = _dist()
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timedelta(seconds=timeout))
    try:
        try:
            result: Any = fn(*args, **kwargs)
        except OracleInputError as exc:
            result = exc
        if rank == 0:
            with open(out, "wb") as fh:
                pickle.dump(result, fh)
        dist.barrier()  # no rank tears the group down while another still talks to it
    finally:
        dist.destroy_process_group()
    # Done and written: leave without running C++ static destructors, where a gloo/c10d helper thread still
    # joinable at interpreter exit sometimes aborts the process ("terminate called without an active exception")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_on_ranks(fn: Any, *args: Any, nproc: int = 2, backend: str = "gloo", timeout: float = 300.0,
                 **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` on ``nproc`` new processes (``spawn``) in one process group (``backend``, a
    loopback rendezvous, collectives timing out after ``timeout`` s); returns rank 0's result.

    ``fn`` must be importable by the new processes (a module-level function). Raises ``TimeoutError``
    when the ranks do not finish in ``timeout`` seconds and ``RuntimeError`` when a rank raises or dies;
    no rank process outlives the call. An :class:`OracleInputError` raised on rank 0 is re-raised here.
    """
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="optverify-ranks-") as tmp:
        out = os.path.join(tmp, "result.pkl")
        ctx = mp.start_processes(_rank_main, args=(nproc, _free_port(), out, backend, timeout, fn, args, kwargs),
                                 nprocs=nproc, join=False, start_method="spawn")
        deadline = time.monotonic() + timeout
        try:
            while not ctx.join(timeout=0.5):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{nproc} ranks did not finish in {timeout:g}s")
        except mp.ProcessRaisedException as exc:
            raise RuntimeError(f"a rank failed: {str(exc).strip().splitlines()[-1]}") from exc
        except mp.ProcessExitedException as exc:
            raise RuntimeError(f"a rank process died ({exc})") from None
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
                    p.join(5)
        with open(out, "rb") as fh:
            result = pickle.load(fh)
    if isinstance(result, OracleInputError):
        raise result
    return result


def compare_distributed(reference: str, candidate: Any, *, nproc: int = 2, layout: str = "fsdp2",
                        timeout: float = 300.0, **options: Any) -> OracleReport:
    """:func:`verify.oracle.compare` with the candidate on ``nproc`` ranks (see the module docstring).

    ``options`` are :func:`compare`'s keyword arguments. Raises :class:`OracleInputError` for bad
    settings (also those a rank found), ``TimeoutError`` when the ranks do not finish in ``timeout``
    seconds, ``RuntimeError`` when a rank process dies.
    """
    if layout not in LAYOUTS:
        raise OracleInputError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise OracleInputError(f"nproc must be an int >= 1, got {nproc!r}")
    dist = _dist()
    if not dist.is_available():
        raise OracleInputError("nproc: this torch build has no torch.distributed")
    if dist.is_initialized():  # inside a job (torchrun): every rank calls this collectively
        return _run_here(reference, candidate, layout, options)
    device = torch.device(options.get("device", "cpu"))
    if device.type == "cuda" and torch.cuda.device_count() < nproc:
        raise OracleInputError(f"nproc {nproc} needs as many GPUs; {torch.cuda.device_count()} visible")
    if device.type != "cuda" and not dist.is_gloo_available():
        raise OracleInputError("nproc: the gloo backend is not available in this torch build")
    try:
        return run_on_ranks(_run_here, reference, candidate, layout, options, nproc=nproc, backend=_backend(device),
                            timeout=timeout)
    except (TimeoutError, RuntimeError) as exc:
        raise type(exc)(f"verify oracle --nproc {nproc}: {exc}") from None
