"""Optimizer-state memory: formulas (:mod:`.formulas`), a state walker (:mod:`.walker`), the LLaMA
configurations as shape lists (:mod:`.models`), model totals and the comparison with the papers'
tables (:mod:`.totals`). See memory.md."""

from .formulas import FORMULAS, ParamMemory, Term, has_formula, param_memory
from .walker import StateReport, walk_state

__all__ = ["FORMULAS", "ParamMemory", "Term", "has_formula", "param_memory", "StateReport", "walk_state"]
