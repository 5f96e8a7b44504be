"""Optimizer-state memory: the formula framework (:mod:`.formulas`; each family's formulas are in
:mod:`verify.methods`), a state walker (:mod:`.walker`), the LLaMA configurations built on the ``meta``
device and routed as each paper did (:mod:`.models`), model totals (:mod:`.totals`), the comparison
with the papers' tables (:mod:`.paper_tables`) and the GPU measurement (:mod:`.gpu`)."""

from .formulas import FORMULAS, ParamMemory, Term, has_formula, param_memory
from .walker import StateReport, walk_state

__all__ = ["FORMULAS", "ParamMemory", "Term", "has_formula", "param_memory", "StateReport", "walk_state"]
