"""Step verdicts of a comparison, as a reviewer reads them. Pure functions.

A step failing on head is blamed on the patch only when it passes on base and
fails every time head runs it; one that fails once and passes when run again
is flaky, and one that fails on base too is still failing, reported but not
blamed.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.results import Status

RUNS_TO_BLAME = 2  # a new failure is run again before it is blamed


class Change(StrEnum):
    """What head did to a step, as a reviewer names it."""

    NEW_FAILURE = "new failure"
    FLAKY = "flaky"
    STILL_FAILING = "still failing"
    FIXED = "fixed"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class StepOutcome:
    status: Status  # a step's or a stage's
    message: str = ""


@dataclass(frozen=True)
class StepVerdict:
    name: str
    kind: Change
    base: str  # what base did, e.g. "passed 2/2"
    head: str
    detail: str


@dataclass(frozen=True)
class _Side:
    state: str  # "pass", "fail", "flaky" or "skip"
    summary: str
    message: str  # the first failure's message, or why it was skipped


def _side(outcomes: Sequence[StepOutcome], label: str) -> _Side:
    ran = [outcome for outcome in outcomes if outcome.status.ran]
    if not ran:
        reason = next((outcome.message for outcome in outcomes if outcome.message), f"not run on {label}")
        return _Side("skip", "skipped", reason)
    failures = [outcome for outcome in ran if outcome.status.failing]
    if not failures:
        return _Side("pass", f"passed {len(ran)}/{len(ran)}", "")
    statuses = "/".join(sorted({outcome.status for outcome in failures}))
    state = "fail" if len(failures) == len(ran) else "flaky"
    return _Side(state, f"{statuses} {len(failures)}/{len(ran)}", failures[0].message)


def classify(name: str, base: Sequence[StepOutcome], head: Sequence[StepOutcome]) -> StepVerdict:
    """One step (or the build, or the boot) over every run of each side."""
    b, h = _side(base, "base"), _side(head, "head")

    def verdict(kind: Change, detail: str) -> StepVerdict:
        return StepVerdict(name, kind, b.summary, h.summary, detail)

    if b.state == "skip" or h.state == "skip":
        if b.state == h.state:
            return verdict(Change.SKIPPED, f"skipped on both: {h.message}")
        side, reason = ("head", h.message) if h.state == "skip" else ("base", b.message)
        return verdict(Change.SKIPPED, f"skipped on {side} only: {reason}")
    if h.state == "pass":
        if b.state == "fail":
            return verdict(Change.FIXED, f"failed on base: {b.message}")
        return verdict(Change.UNCHANGED, f"flaky on base: {b.message}" if b.state == "flaky" else "")
    if b.state != "pass":
        return verdict(Change.STILL_FAILING, f"fails on base too: {h.message}")
    if h.state == "flaky":
        return verdict(Change.FLAKY, f"failed on head and passed when run again: {h.message}")
    return verdict(Change.NEW_FAILURE, h.message)


def classify_all(base: dict[str, Sequence[StepOutcome]], head: dict[str, Sequence[StepOutcome]]) -> list[StepVerdict]:
    """Every step either side ran, in head's order, then base's own."""
    names = list(head) + [name for name in base if name not in head]
    return [classify(name, base.get(name, ()), head.get(name, ())) for name in names]


def to_run_again(verdicts: Sequence[StepVerdict], head_runs: int) -> list[str]:
    """New failures not yet seen often enough to be blamed."""
    return [v.name for v in verdicts if v.kind == Change.NEW_FAILURE] if head_runs < RUNS_TO_BLAME else []
