"""The fast path of the projected methods (``fast=``; :mod:`algorithms._base`, "Fast path"): the reference
update, run once on a *stack* of same-shape matrices instead of once per matrix.

Every reference update is written for tensors with leading independent-problem dimensions
(``batch_dims``): decompositions, projections and norms act on each problem separately, and the
contract battery checks that a batched run equals separate runs. So the parameters of a group that
share a shape, a dtype, a device, a step count and a state layout can be stacked into one tensor
``[k, *shape]`` (one more leading independent dimension), stepped by the class's own update on the
stack — one batched SVD / QR / power iteration and one batched matrix product per shape instead of
``k`` of each — and copied back. The maths is the reference's by construction; batched LAPACK/BLAS
calls may round differently from single ones (tests/test_fast_path.py measures the difference).

Hooks a class may override (defaults in :class:`StackedFastPath`):

``_stackable(p, state, group)``
    False when this step of ``p`` draws random numbers: the generator belongs to the parameter (its
    stream is saved in ``state["rng_state"]``), a stack has none, so such a step takes the reference
    :meth:`_update_param` and the streams stay those of the reference path.
``_before_stacking(p, grad, state, group)`` / ``_stacked_update(p, grad, state, group)``
    a class whose update cannot run on a stack as a whole (AdaRankGrad: the rank, hence the state's
    shape, is chosen per matrix) splits it: the first runs per parameter (refresh tests, refreshes), the
    second on the stack (the projected Adam step). Defaults: nothing, then :meth:`_update_param`.
``_fast_dense(p, group)`` / ``_step_dense_foreach(params, grads, states, group)``
    the dense (non-projected) parameters of a class that gives them a multi-tensor update of their own.

What is not stacked: a parameter alone in its bucket (stepped directly), a step that is not
``_stackable``, state keys listed in ``unstacked_keys`` (kept per parameter, never read by the stacked
update). ``stack_counters`` are the integer counters the update reads as one number (``int(state[k])``):
parameters are stacked only when these agree, and the stack carries one copy. Transient memory: one
stack holds copies of its parameters, gradients and state, at most :data:`STACK_ELEMENTS` parameter
entries at a time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ._foreach import pick

__all__ = ["StackedFastPath", "STACK_ELEMENTS"]

#: the most parameter entries stacked at once (a larger bucket is stepped in chunks)
STACK_ELEMENTS = 1 << 25


def _chunks(indices: list[int], params: list[torch.Tensor]) -> list[list[int]]:
    per = max(1, STACK_ELEMENTS // max(1, params[indices[0]].numel()))
    return [indices[i:i + per] for i in range(0, len(indices), per)]


class StackedFastPath:
    """Mixin (before :class:`algorithms._base.ReferenceOptimizer`) giving a class the stacked fast path."""

    has_fast_path: ClassVar[bool] = True
    #: integer counters the update reads as one number: equal across a stack, carried once
    stack_counters: ClassVar[frozenset[str]] = frozenset({"step"})
    #: state keys the stacked update never reads (kept per parameter, never stacked)
    unstacked_keys: ClassVar[frozenset[str]] = frozenset({"nonfinite_skips", "rng_state"})

    # ------------------------------------------------------------------ hooks
    def _stackable(self, p: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> bool:
        """Whether this step of ``p`` may run on a stack (False when it draws from ``p``'s own generator)."""
        return True

    def _before_stacking(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Per-parameter part of the update, run before the stacks are formed (default: none)."""

    def _stacked_update(self, p: torch.Tensor, grad: torch.Tensor, state: dict[str, Any], group: dict[str, Any]) -> None:
        """The part of the update a stack runs (default: all of it)."""
        self._update_param(p, grad, state, group)

    def _fast_dense(self, p: torch.Tensor, group: dict[str, Any]) -> bool:
        """Whether ``p`` takes :meth:`_step_dense_foreach` (a multi-tensor dense update) instead of a stack."""
        return False

    def _step_dense_foreach(self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict[str, Any]],
                            group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ the step
    def _step_group_fast(self, group: dict[str, Any]) -> None:
        params, grads, states = self._active_params(group)
        dense = [i for i, p in enumerate(params) if self._fast_dense(p, group)]
        if dense:
            self._step_dense_foreach(pick(params, dense), pick(grads, dense), pick(states, dense), group)
        taken = set(dense)
        stacks: dict[tuple, list[int]] = {}
        for i, (p, grad, state) in enumerate(zip(params, grads, states)):
            if i in taken:
                continue
            if not self._stackable(p, state, group):
                self._update_param(p, grad, state, group)
                continue
            self._before_stacking(p, grad, state, group)
            key = (p.device, p.dtype, tuple(p.shape), self._state_signature(state))
            stacks.setdefault(key, []).append(i)
        stacked_group = {**group, "batch_dims": group["batch_dims"] + 1}
        for indices in stacks.values():
            for chunk in _chunks(indices, params):
                if len(chunk) == 1:
                    i = chunk[0]
                    self._stacked_update(params[i], grads[i], states[i], group)
                else:
                    self._update_stack(pick(params, chunk), pick(grads, chunk), pick(states, chunk), stacked_group)

    def _state_signature(self, state: dict[str, Any]) -> tuple:
        """What two states must share to be stacked: every key, each tensor's shape and dtype, each counter's
        value, every other value."""
        items = []
        for key in sorted(state):
            if key in self.unstacked_keys:
                continue
            value = state[key]
            if isinstance(value, torch.Tensor):
                counter = int(value) if key in self.stack_counters else None
                items.append((key, tuple(value.shape), value.dtype, value.device, counter))
            else:
                items.append((key, repr(value)))
        return tuple(items)

    def _update_stack(self, params: list[torch.Tensor], grads: list[torch.Tensor], states: list[dict[str, Any]],
                      stacked_group: dict[str, Any]) -> None:
        """Step ``params`` as one stacked parameter with :meth:`_stacked_update`, then copy everything back."""
        param = torch.stack(params)
        state: dict[str, Any] = {}
        for key, value in states[0].items():
            if key in self.unstacked_keys:
                continue
            if key in self.stack_counters:
                state[key] = value.clone()
            elif isinstance(value, torch.Tensor):
                state[key] = torch.stack([s[key] for s in states])
            else:
                state[key] = value
        self._stacked_update(param, torch.stack(grads), state, stacked_group)
        torch._foreach_copy_(params, list(param.unbind(0)))
        for s in states:
            for key in [k for k in s if k not in self.unstacked_keys and k not in state]:
                del s[key]  # the update dropped it (e.g. a basis replaced by indices)
        for key, value in state.items():
            if key in self.stack_counters:
                for s in states:
                    if key in s:
                        s[key].copy_(value)
                    else:
                        s[key] = value.clone()
            elif isinstance(value, torch.Tensor):
                for s, piece in zip(states, value.unbind(0)):
                    old = s.get(key)
                    if isinstance(old, torch.Tensor) and old.shape == piece.shape and old.dtype == piece.dtype:
                        old.copy_(piece)
                    else:
                        s[key] = piece.clone()
            else:
                for s in states:
                    s[key] = value
