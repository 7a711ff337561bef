"""Bisection decisions: pure functions, tested on scripted histories without kernels.

A failure's *signature* says which step failed and how; a bisection follows
the one seen at its bad end and nothing else. A commit is bad when that
signature recurs twice (once, for a crash), good when every run passes,
and skipped when it cannot be tested or shows a different failure (recorded,
never followed: the way bisections wander off after another bug).

Flaky failures: the signature's reproduction rate p is measured at the bad
end, and a good verdict after n clean runs is right with probability
1 - (1 - p)^n (syzkaller's confidence). The bisection runs each commit often
enough that the product over its good verdicts stays at CONFIDENCE_BAR or
more, and names no culprit below it. p is taken as the lower end of its
Wilson score interval, so ten failures in ten runs do not claim certainty.
"""

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.plan import base_name
from orchestrator.results import Blame, ProblemKind, StageResult, Status, StepResult

CONFIDENCE_BAR = 0.9
REPRO_RUNS = 10  # at the bad end, to measure the reproduction rate
MAX_RUNS = 100  # per commit: past this, a step costs more than a bisection should
WILSON_Z = 1.645  # one-sided 95 %
# When one step shows several failures, the first kind here is its signature.
KINDS = tuple(ProblemKind)  # in the order of how telling they are
# A commit is bad on this many runs showing the signature; a crash needs only one.
BAD_MATCHES = 2

_WARNING = re.compile(r"WARNING: CPU: \d+ PID: \d+ at (\S+?):\d+ ([\w.]+)")
_ADDRESS = re.compile(r"\b(?:0x)?[0-9a-f]{8,}\b|0x[0-9a-f]+", re.I)
_NUMBER = re.compile(r"\b\d+(?=s?\b)")  # "stuck for 22s" as "stuck for Ns"
_KEYED_VALUE = re.compile(r"\b(pfn|address|addr|ptr|ip|pc):\s*(?:0x)?[0-9a-f]+\b", re.I)


class Judgement(StrEnum):
    """What testing a commit for the signature says of it."""

    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"  # cannot be tested, or shows another failure
    INFRA = "infra"  # the host failed: retried, then the bisection stops
    WEAK = "weak"  # one matching failure: tested again


class CommitStage(StrEnum):
    """How far testing a commit got."""

    TESTED = "tested"
    BUILD = "build"  # the commit does not build (skip)
    BOOT = "boot"  # its kernel does not boot (skip)
    CONFIG = "config"  # the config cannot be met on it (skip)
    INFRA = "infra"  # the host's fault (retry, then abort)


@dataclass(frozen=True, order=True)
class Signature:
    step: str  # the plan step's name (without a repeat's #N)
    kind: ProblemKind
    detail: str = ""  # normalized: a splat's title, a WARN's function, a dump_page field

    def __str__(self) -> str:
        return f"{self.step}: {self.kind}" + (f" ({self.detail})" if self.detail else "")

    @classmethod
    def from_dict(cls, data: dict) -> "Signature":
        return cls(data["step"], ProblemKind(data["kind"]), data.get("detail", ""))


def normalize_splat(line: str) -> str:
    """A splat line without what differs between boots and builds: addresses, numbers, line numbers, offsets."""
    line = line.strip()
    if warning := _WARNING.search(line):
        return f"WARNING at {warning.group(2)} ({warning.group(1)})"
    line = re.sub(r"\+0x[0-9a-f]+/0x[0-9a-f]+", "", line)
    line = _KEYED_VALUE.sub(lambda match: f"{match.group(1)}:ADDR", line)
    line = _NUMBER.sub("N", _ADDRESS.sub("ADDR", line))
    return " ".join(line.split())


def failures_of(result: StepResult) -> tuple[Signature, ...]:
    """Every way a step result failed, most telling first; empty when it passed or did not run.

    Read from the result's problems (their kinds and subjects), never from its message."""
    if not result.status.failing:
        return ()
    name = base_name(result.step.name)
    found: list[Signature] = []
    for problem in result.problems:
        # A signature per subject: splat lines normalized; a step's failed KTAP titles, numbers dropped, as one.
        if problem.kind == ProblemKind.KTAP:
            details = ["; ".join(sorted({_NUMBER.sub("N", title) for title in problem.about}))]
        else:
            details = [normalize_splat(subject) if problem.kind in (ProblemKind.SPLAT, ProblemKind.CRASH) else subject
                       for subject in problem.about] or [""]
        for detail in details:
            signature = Signature(name, problem.kind, detail)
            if signature not in found:
                found.append(signature)
    return tuple(sorted(found, key=lambda signature: KINDS.index(signature.kind)))


@dataclass(frozen=True)
class StepRun:
    """One run of one step: its failures (none: passed), or why it could not run."""

    step: str
    failures: tuple[Signature, ...] = ()
    skipped: str = ""

    @classmethod
    def of(cls, result: StepResult) -> "StepRun":
        return cls(base_name(result.step.name), failures_of(result),
                   "" if result.status.ran else (result.message or str(result.status)))


@dataclass(frozen=True)
class Outcome:
    """What testing one commit gave."""

    stage: CommitStage
    runs: tuple[StepRun, ...] = ()
    detail: str = ""  # the build error, boot failure, unmet option or infrastructure trouble
    build_seconds: float = 0.0
    boot_seconds: float = 0.0


@dataclass(frozen=True)
class CommitVerdict:
    verdict: Judgement
    why: str
    matching: int = 0
    runs: int = 0
    confidence: float = 1.0  # of a good verdict: that it hides no failure
    other: tuple[str, ...] = ()  # different failures seen here


def failure_stage(build: StageResult, boot: StageResult) -> CommitStage | None:
    """Why a suite could not test the kernel: the build or boot (the commit's fault), the host's, or None."""
    for stage, result in ((CommitStage.BUILD, build), (CommitStage.BOOT, boot)):
        if result.status == Status.FAILED:
            return stage if result.blame == Blame.KERNEL else CommitStage.INFRA
    return None


_STAGE_WHY = {CommitStage.BUILD: "the build failed", CommitStage.BOOT: "the kernel did not boot",
              CommitStage.CONFIG: "the config cannot be met"}


def good_confidence(rate: float, runs: int) -> float:
    return 1.0 - (1.0 - rate) ** runs


def commit_verdict(outcome: Outcome, signature: Signature, rate: float) -> CommitVerdict:
    """Good, bad, skip, infra or weak: what one commit's runs say of the signature."""
    if outcome.stage == CommitStage.INFRA:
        return CommitVerdict(Judgement.INFRA, f"infrastructure: {outcome.detail}")
    if outcome.stage != CommitStage.TESTED:
        why = _STAGE_WHY[outcome.stage] + (f": {outcome.detail}" if outcome.detail else "")
        return CommitVerdict(Judgement.SKIP, why)
    runs = [run for run in outcome.runs if run.step == signature.step]
    if not runs:
        return CommitVerdict(Judgement.SKIP, f"step {signature.step} did not run")
    matching = sum(signature in run.failures for run in runs)
    other = tuple(sorted({str(failure) for run in outcome.runs for failure in run.failures
                          if failure != signature}))
    seen = f"{matching} of {len(runs)} runs show {signature.kind}"
    if matching >= BAD_MATCHES or (matching and signature.kind == ProblemKind.CRASH):
        return CommitVerdict(Judgement.BAD, seen, matching, len(runs), other=other)
    if matching == 1:
        return CommitVerdict(Judgement.WEAK, seen + ": one is not enough to call it bad", matching, len(runs),
                             other=other)
    if skipped := [run.skipped for run in runs if run.skipped]:
        return CommitVerdict(Judgement.SKIP, f"{signature.step} could not run: {skipped[0]}", 0, len(runs),
                             other=other)
    if other:
        return CommitVerdict(Judgement.SKIP, f"a different failure ({other[0]}), not followed", 0, len(runs),
                             other=other)
    return CommitVerdict(Judgement.GOOD, f"{len(runs)} of {len(runs)} runs pass", 0, len(runs),
                         good_confidence(rate, len(runs)))


def merge_outcomes(first: Outcome, second: Outcome) -> Outcome:
    """A weak commit tested again: both tests' runs count."""
    if second.stage != CommitStage.TESTED:
        return second
    return Outcome(CommitStage.TESTED, first.runs + second.runs, second.detail,
                   first.build_seconds + second.build_seconds, first.boot_seconds + second.boot_seconds)


def weak_again(verdict: CommitVerdict) -> CommitVerdict:
    """A commit that stays weak after its retest is skipped: neither verdict can be trusted."""
    if verdict.verdict != Judgement.WEAK:
        return verdict
    return CommitVerdict(Judgement.SKIP, f"ambiguous: {verdict.why.split(':')[0]}", verdict.matching, verdict.runs,
                   other=verdict.other)


@dataclass(frozen=True)
class Reproduction:
    """The bad end's failure: the signature to follow and how often it shows."""

    signature: Signature | None
    matching: int
    runs: int
    seen: tuple[str, ...] = ()  # every failure seen, with counts

    @property
    def rate(self) -> float:
        return wilson_lower(self.matching, self.runs)


def wilson_lower(successes: int, trials: int, z: float = WILSON_Z) -> float:
    """The lower end of the Wilson score interval of a proportion."""
    if trials == 0:
        return 0.0
    ratio = successes / trials
    centre = ratio + z * z / (2 * trials)
    spread = z * math.sqrt(ratio * (1 - ratio) / trials + z * z / (4 * trials * trials))
    return max(0.0, (centre - spread) / (1 + z * z / trials))


def choose_signature(outcome: Outcome, step_order: tuple[str, ...]) -> Reproduction:
    """The most frequent failure at the bad end; ties go to the more telling kind, then to the earlier step."""
    counts: dict[Signature, int] = {}
    for run in outcome.runs:
        for failure in run.failures:
            counts[failure] = counts.get(failure, 0) + 1
    seen = tuple(f"{signature}: {count}x" for signature, count in sorted(counts.items(), key=lambda item: -item[1]))
    if not counts:
        return Reproduction(None, 0, len(outcome.runs), seen)

    def order(signature: Signature) -> tuple:
        step = step_order.index(signature.step) if signature.step in step_order else len(step_order)
        return (-counts[signature], KINDS.index(signature.kind), step, signature.detail)

    signature = min(counts, key=order)
    runs = sum(run.step == signature.step for run in outcome.runs)
    return Reproduction(signature, counts[signature], runs, seen)


def expected_good_verdicts(commits_in_range: int) -> int:
    """At most one good verdict per bisection step, plus the good end, the parent check and the revert check."""
    return max(1, math.ceil(math.log2(max(commits_in_range, 1) + 1))) + 3


def runs_needed(rate: float, good_verdicts: int, crash: bool = False, bar: float = CONFIDENCE_BAR) -> int | None:
    """Runs per commit so that good_verdicts good verdicts together reach bar; None if over MAX_RUNS."""
    minimum = 1 if crash else BAD_MATCHES
    if rate <= 0.0:
        return None
    if rate >= 1.0:
        return minimum
    per_verdict = bar ** (1.0 / good_verdicts)
    runs = math.ceil(math.log(1.0 - per_verdict) / math.log(1.0 - rate))
    runs = max(minimum, runs)
    return runs if runs <= MAX_RUNS else None


def pooled_rate(rate: float, bad_counts: list[tuple[int, int]]) -> float:
    """The rate from every run at a commit known bad, (matching, runs) each; it only ever falls."""
    matching, runs = sum(count[0] for count in bad_counts), sum(count[1] for count in bad_counts)
    return min(rate, wilson_lower(matching, runs)) if runs else rate


def overall_confidence(good_verdicts: list[CommitVerdict], rate: float) -> float:
    """The chance that no good verdict hides a missed failure, at the final rate."""
    return math.prod(good_confidence(rate, verdict.runs) for verdict in good_verdicts)


CULPRIT_FAILS, PARENT_PASSES, REVERT_PASSES = "culprit fails again", "parent passes again", "revert passes"
REQUIRED_CHECKS = (CULPRIT_FAILS, PARENT_PASSES)  # the revert's check counts where the revert applies


class CheckStatus(StrEnum):
    HELD = "held"
    FAILED = "failed"
    NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class Check:
    name: str  # CULPRIT_FAILS, PARENT_PASSES or REVERT_PASSES
    status: CheckStatus
    detail: str = ""


class Ending(StrEnum):
    """How a bisection ended."""

    CULPRIT = "culprit"  # named and confirmed
    UNCONFIRMED = "unconfirmed"
    CANDIDATES = "candidates"  # skipped commits border it
    LOW_CONFIDENCE = "low-confidence"
    NOT_REPRODUCED = "not-reproduced"
    GOOD_FAILS = "good-fails"
    UNTESTABLE_END = "untestable-end"


@dataclass(frozen=True)
class Conclusion:
    outcome: Ending
    message: str
    culprit: str = ""
    candidates: tuple[str, ...] = ()
    confidence: float = 0.0
    checks: tuple[Check, ...] = ()

    @property
    def exit_code(self) -> int:
        return 0 if self.outcome == Ending.CULPRIT else 1


def check_of(name: str, verdict: CommitVerdict | None, wanted: Judgement, not_applicable: str = "") -> Check:
    if verdict is None:
        return Check(name, CheckStatus.NOT_APPLICABLE, not_applicable)
    if verdict.verdict == wanted:
        return Check(name, CheckStatus.HELD, verdict.why)
    return Check(name, CheckStatus.FAILED, f"{verdict.verdict}: {verdict.why}")


def conclude(first_bad: str, candidates: tuple[str, ...], confidence: float, checks: tuple[Check, ...],
             bar: float = CONFIDENCE_BAR) -> Conclusion:
    """The culprit, named only when both required checks held and no check failed, at the confidence bar."""
    if not first_bad:
        return Conclusion(Ending.CANDIDATES, f"skipped commits border the culprit: it is one of {len(candidates)}",
                          candidates=candidates, confidence=confidence, checks=checks)
    if confidence < bar:
        return Conclusion(Ending.LOW_CONFIDENCE, f"confidence {confidence:.3f} is below {bar}: no culprit named",
                          candidates=(first_bad,), confidence=confidence, checks=checks)
    failed = [check.name for check in checks if check.status == CheckStatus.FAILED]
    held = {check.name for check in checks if check.status == CheckStatus.HELD}
    missing = [name for name in REQUIRED_CHECKS if name not in held]
    if failed or missing:
        names = ", ".join(failed + [f"{name}: not run" for name in missing if name not in failed])
        return Conclusion(Ending.UNCONFIRMED, f"first bad commit found but not confirmed ({names})",
                          culprit=first_bad, confidence=confidence, checks=checks)
    return Conclusion(Ending.CULPRIT, "first bad commit found and confirmed", culprit=first_bad,
                      confidence=confidence, checks=checks)
