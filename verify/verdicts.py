r"""One vocabulary for every verdict optverify prints: provenance tags, outcomes, and the gate between them.

Every engine (``verify check``, ``verify rates``, ``verify rank``, ``verify claims``) reaches a
statistical **outcome** and then passes it through one **gate** that looks at where the claim comes
from. The table of tags, their meaning and whether a claim carrying the tag may be asserted is
:data:`TAGS`; ``docs/verdicts.md`` shows it (a test keeps the two equal).

Outcomes (:data:`OUTCOMES`), what the measurement says about the claim's target:

================ ==========================================================================
``PASS``         the estimate (with its interval) lies inside the claimed region
``FAIL``         it lies outside, decisively
``INCONCLUSIVE`` the measurement cannot decide (interval too wide, straddling an edge, a
                 premise violated, a fit window that is not stationary, no power)
``MEASURED``     a number with no target: reported, never judged
================ ==========================================================================

Verdicts after the gate (:func:`gate`):

* **asserted** (the tag may be asserted): ``PASS`` / ``FAIL`` / ``INCONCLUSIVE``; an asserted FAIL
  (or ERROR) makes the command exit non-zero;
* **reported** (the claim is reconstructed or second-hand, or the check has no power against the
  alternatives it declares): ``CONSISTENT`` / ``INCONSISTENT`` / ``INCONCLUSIVE`` / ``MEASURED``.
  A reported claim never passes and never fails a command;
* ``ERROR``: the check itself could not run (a missing row, a bad window); never a pass.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "Tag", "TAGS", "parse_tag", "category_of", "assertable", "OUTCOMES", "ASSERTED_VERDICTS", "REPORTED_VERDICTS",
    "Outcome", "Verdict", "gate", "error_verdict", "exit_status", "count_verdicts", "tag_table_markdown",
    "judged", "gated_row",
]


@dataclass(frozen=True)
class Tag:
    """A provenance tag: where a claim was read, and whether a check may assert it."""

    code: str
    meaning: str
    assertable: bool
    category: str  #: "verified", "background", "measured" or "reconstructed"
    rule: str  #: how a claim with this tag is treated

    @property
    def label(self) -> str:
        return f"[{self.code}]"


TAGS: dict[str, Tag] = {t.code: t for t in (
    Tag("P", "read in the paper's full text (theorem, equation, table, algorithm box)", True, "verified",
        "asserted"),
    Tag("C", "read in the authors' official code at a pinned commit", True, "verified",
        "asserted for variant=\"official\""),
    Tag("V", "checked numerically: the authors' code run against an independent implementation or a closed form",
        True, "verified", "asserted, with the stated tolerance"),
    Tag("D", "derived here from definitions (algebra or arithmetic written out in the check)", True, "verified",
        "asserted"),
    Tag("M", "measured on a synthetic experiment in this repository (observed numbers)", True, "measured",
        "asserted as an expected value with a tolerance"),
    Tag("BG", "background from the standard literature (not from the seed papers)", True, "background",
        "asserted for shapes (exponents) only, never for constants"),
    Tag("A", "the paper's abstract, title or bibliographic record only; its body not read", False, "reconstructed",
        "reported"),
    Tag("F", "read off a figure of the authors' README (the plotted quantity and its conditions not stated)", False,
        "reconstructed", "reported: a value read off a plot is the authors' claim, not a statement we can pin down"),
    Tag("T", "read in third-party code (not the authors')", False, "reconstructed", "reported"),
    Tag("S", "secondary: reviews, summaries, later papers", False, "reconstructed", "reported"),
    Tag("U", "unverified reconstruction", False, "reconstructed", "reported; the choice is a constructor argument"),
)}

OUTCOMES = ("PASS", "FAIL", "INCONCLUSIVE", "MEASURED")
ASSERTED_VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE", "ERROR")
REPORTED_VERDICTS = ("CONSISTENT", "INCONSISTENT", "INCONCLUSIVE", "MEASURED", "ERROR")
_REPORTED_WORD = {"PASS": "CONSISTENT", "FAIL": "INCONSISTENT", "INCONCLUSIVE": "INCONCLUSIVE", "MEASURED": "MEASURED"}


def parse_tag(provenance: str) -> Tag:
    """``"P"``, ``"[P]"`` -> the :class:`Tag`; an unknown tag is a ``ValueError`` listing the known ones."""
    if not isinstance(provenance, str):
        raise TypeError(f"provenance must be a tag string such as 'P' or '[P]', got {type(provenance).__name__}")
    code = provenance.strip().strip("[]")
    try:
        return TAGS[code]
    except KeyError:
        raise ValueError(f"unknown provenance tag {provenance!r}; known: {sorted(TAGS)}") from None


def category_of(provenance: str) -> str:
    return parse_tag(provenance).category


def assertable(provenance: str) -> bool:
    return parse_tag(provenance).assertable


def _finite_numbers(numbers: Mapping[str, Any]) -> dict[str, Any]:
    """Strict-JSON numbers: NaN and ±inf become None (and are named in the reason by the caller)."""
    out = {}
    for key, value in numbers.items():
        if isinstance(value, float) and not math.isfinite(value):
            out[key] = None
        else:
            out[key] = value
    return out


@dataclass(frozen=True)
class Outcome:
    """What a measurement says about a claim, before provenance is considered.

    ``numbers`` are the few values the verdict rests on (claimed and measured, in the result row);
    ``data`` is bulk output for result files and figures (traces), never printed with the verdict.
    """

    outcome: str
    reason: str
    numbers: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict, repr=False)
    #: False when the check itself says it cannot assert (e.g. no measured power): :func:`gate` then
    #: reports the outcome whatever the tag, giving ``not_assessed_because`` as the reason
    assess: bool = True
    not_assessed_because: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")
        if not isinstance(self.reason, str) or not self.reason:
            raise ValueError("an outcome needs a reason (a non-empty string)")
        if not self.assess and not self.not_assessed_because:
            raise ValueError("an outcome that is not assessed needs not_assessed_because")


@dataclass(frozen=True)
class Verdict:
    """An outcome after the gate: what is shown, and whether it counts as an assertion."""

    verdict: str  #: one of ASSERTED_VERDICTS (asserted) or REPORTED_VERDICTS (reported)
    outcome: str  #: the statistical outcome, whatever the provenance ("ERROR" when the check could not run)
    asserted: bool
    reason: str
    provenance: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def failed(self) -> bool:
        """True for what must make a command exit non-zero: an asserted FAIL or ERROR."""
        return self.asserted and self.verdict in ("FAIL", "ERROR")


def gate(outcome: Outcome, provenance: str, *, assess: bool = True, not_assessed_because: str = "") -> Verdict:
    """Apply the provenance rule (and the check's own ``assess`` flag) to an outcome.

    * an assertable tag and ``assess=True``: the outcome is the verdict;
    * a report-only tag: PASS -> CONSISTENT, FAIL -> INCONSISTENT (never asserted);
    * ``assess=False`` (e.g. a check without measured power): reported the same way, with the reason;
    * a ``MEASURED`` outcome is always reported.
    """
    tag = parse_tag(provenance)
    if outcome.outcome == "MEASURED":
        return Verdict("MEASURED", "MEASURED", False, outcome.reason, tag.label)
    if tag.assertable and assess:
        return Verdict(outcome.outcome, outcome.outcome, True, outcome.reason, tag.label)
    if not tag.assertable:
        why = f"reported, not asserted: the claim is {tag.label} ({tag.meaning})"
    else:
        why = f"reported, not asserted: {not_assessed_because or 'the check is not assessed'}"
    return Verdict(_REPORTED_WORD[outcome.outcome], outcome.outcome, False, f"{why}; {outcome.reason}", tag.label)


def judged(passed: bool, reason: str, numbers: Mapping[str, Any] | None = None, data: Mapping[str, Any] | None = None
           ) -> Outcome:
    """The outcome of a check with a binary criterion: PASS when ``passed``, else FAIL."""
    return Outcome("PASS" if passed else "FAIL", reason, dict(numbers or {}), dict(data or {}))


def gated_row(key: str, check: Callable[[], Outcome], provenance: str, *, assess: bool = True,
              **fields: Any) -> tuple[dict[str, Any], Outcome | None]:
    """Run ``check()``, gate its outcome, and return the one result-row shape every engine prints:
    ``{"key", **fields, "verdict", "outcome", "asserted", "reason", "provenance", "numbers", "seconds"}``,
    with the outcome (``None`` when the check raised: an ERROR, a failure when the claim is asserted).
    The outcome is asserted only when both the caller's ``assess`` and the outcome's own ``assess`` allow it
    (an outcome that is not assessed gives its ``not_assessed_because``)."""
    t0 = time.perf_counter()
    outcome: Outcome | None = None
    try:
        outcome = check()
        if not isinstance(outcome, Outcome):
            raise TypeError(f"the check returned {type(outcome).__name__}, not an Outcome")
        verdict = gate(outcome, provenance, assess=assess and outcome.assess,
                       not_assessed_because=outcome.not_assessed_because)
    except Exception as exc:  # a crashing check is reported as an error, never hidden
        outcome = None
        verdict = error_verdict(f"the check raised {type(exc).__name__}: {exc}", provenance)
    numbers = _finite_numbers(outcome.numbers) if outcome is not None else {}
    row = {"key": key, **fields, **verdict.to_dict(), "numbers": numbers,
           "seconds": round(time.perf_counter() - t0, 2)}
    return row, outcome


def error_verdict(reason: str, provenance: str, *, asserted: bool | None = None) -> Verdict:
    """A check that could not run. It counts as a failure when the claim would have been asserted."""
    tag = parse_tag(provenance)
    return Verdict("ERROR", "ERROR", tag.assertable if asserted is None else asserted, reason, tag.label)


def count_verdicts(results: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """``{"asserted": {verdict: n}, "reported": {verdict: n}}`` over result dicts with ``verdict``/``asserted``."""
    results = list(results)
    asserted = [r for r in results if r.get("asserted")]
    reported = [r for r in results if not r.get("asserted")]
    return {"asserted": {v: sum(r["verdict"] == v for r in asserted) for v in ASSERTED_VERDICTS},
            "reported": {v: sum(r["verdict"] == v for r in reported) for v in REPORTED_VERDICTS}}


def exit_status(results: Iterable[Mapping[str, Any]]) -> int:
    """1 when any asserted result is FAIL or ERROR, else 0 (reported results never fail a command)."""
    return int(any(r.get("asserted") and r.get("verdict") in ("FAIL", "ERROR") for r in results))


def tag_table_markdown() -> str:
    """The tag table as Markdown (``docs/verdicts.md`` holds exactly this table)."""
    lines = ["| tag | meaning | category | may a check assert it? |", "|---|---|---|---|"]
    for t in TAGS.values():
        lines.append(f"| [{t.code}] | {t.meaning} | {t.category} | {'yes' if t.assertable else 'no'}: {t.rule} |")
    return "\n".join(lines)
