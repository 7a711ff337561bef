"""The result model: what a run found, as typed data that every reader shares.

Checks produce it, the report writers (report, kcidb), the comparisons
(step_compare, compare) and bisection (bisect_verdict) read it. Statuses are
enums whose values are the words results.json and JUnit have always used;
a failed check is a Problem whose kind and figures are what programs read,
and whose sentence is for people only: rewording a sentence changes no
decision.
"""

from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.errors import Blame
from orchestrator.parse import StepOutput
from orchestrator.plan import Step


class Status(StrEnum):
    """The outcome of a stage (build, boot) or a step."""

    PASSED = "passed"
    FAILED = "failed"
    CRASHED = "crashed"  # the kernel panicked or Oopsed in the step
    TIMEOUT = "timeout"  # the step hung
    SKIPPED = "skipped"  # not applicable here (the kernel lacks what it needs), with the reason
    INTERRUPTED = "interrupted"  # a signal stopped gupvm before or while it ran
    KNOWN_FAILURE = "known-failure"  # failed as a listed upstream bug explains (orchestrator/known_failures.toml)

    @property
    def failing(self) -> bool:
        """The kernel under test failed: counts against it in every exit code and verdict."""
        return self in (Status.FAILED, Status.CRASHED, Status.TIMEOUT)

    @property
    def ran(self) -> bool:
        return self not in (Status.SKIPPED, Status.INTERRUPTED)


class ProblemKind(StrEnum):
    """What a check found wrong, most telling first (bisect follows the first of a step's kinds)."""

    CRASH = "crash"
    TIMEOUT = "timeout"
    SPLAT = "splat"
    STUCK_TASK = "stuck-task"
    IMBALANCE = "imbalance"
    EXACT_COUNT = "exact-count"
    PIN_LIMIT = "pin-limit"  # not exactly the pins of one page the 1024 bias allows succeeded
    DUMP_PAGE = "dump-page"
    LONGTERM_PIN_MOVABLE = "longterm-pin-movable"  # a long-term pinned page left in ZONE_MOVABLE or CMA
    HUGE_PAGES_NOT_FREED = "huge-pages-not-freed"
    MEMORY_NOT_FREED = "memory-not-freed"
    COUNTERS = "counters"
    RESULT_LINES = "result-lines"
    KTAP = "ktap"
    EXIT = "exit"
    COUNTERS_UNREAD = "counters-unread"


@dataclass(frozen=True)
class Problem:
    """One failed promise of a step."""

    kind: ProblemKind
    sentence: str  # for people: what was expected and what was seen
    about: tuple[str, ...] = ()  # what failed, one bisect signature each: a splat line, a dump_page field, ...
    figures: dict[str, int | str] = field(default_factory=dict)  # the values the check compared


@dataclass(frozen=True)
class StageResult:
    """The build or the boot of one suite: infrastructure rather than a test of the kernel."""

    status: Status
    message: str = ""
    seconds: float = 0.0
    detail: str = ""
    blame: Blame | None = None  # of a failed stage


@dataclass(frozen=True)
class StepResult:
    step: Step
    status: Status
    message: str  # the problems' sentences, or why the step was skipped
    seconds: float
    console: str
    output: StepOutput | None = None
    figures: dict[str, str] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()
    known: tuple[str, ...] = ()  # the references of the known failures that explain what failed
    known_subjects: tuple[str, ...] = ()  # what they explain (the KTAP results, splat lines, ...)
    unexpectedly_passing: tuple[str, ...] = ()  # known to fail here (these references), and did not

    @property
    def passed(self) -> bool:
        return self.status == Status.PASSED


@dataclass(frozen=True)
class SuiteResult:
    """One cell: a kernel built for an arch and booted with a plan."""

    name: str
    properties: dict[str, str]
    build: StageResult
    boot: StageResult
    steps: tuple[StepResult, ...]

    @property
    def statuses(self) -> list[Status]:
        """Every testcase's outcome as passed, failed, skipped or a known failure: crashes and timeouts fail,
        and so does an interrupted build or boot; a step a signal kept from running was skipped."""
        stages = [self.build.status, self.boot.status]
        steps = [Status.SKIPPED if step.status == Status.INTERRUPTED else step.status for step in self.steps]
        return [status if status in (Status.PASSED, Status.SKIPPED, Status.KNOWN_FAILURE) else Status.FAILED
                for status in stages + steps]

    @property
    def infrastructure_failed(self) -> bool:
        return Status.FAILED in (self.build.status, self.boot.status)

    @property
    def tests_failed(self) -> bool:
        return any(step.status.failing for step in self.steps)
