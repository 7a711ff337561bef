"""gupvm bisect: name the commit that broke GUP, unattended, and prove it.

The bisection runs `git bisect` in a private worktree (gitrepo), tests each
commit with a tester (a real kernel build and boot here, a scripted history
in the tests), and leaves every decision to bisect_verdict. Its state file,
bisect.json, is rewritten after every step, so --resume continues after an
interruption.
"""

import dataclasses
import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator import layout, pipeline, progress, report, source
from orchestrator.arches import DEFAULT_ARCH, select_arches
from orchestrator.bisect_verdict import (
    CULPRIT_FAILS,
    MAX_RUNS,
    PARENT_PASSES,
    REPRO_RUNS,
    REVERT_PASSES,
    CommitStage,
    CommitVerdict,
    Conclusion,
    Ending,
    Judgement,
    Outcome,
    Reproduction,
    Signature,
    StepRun,
    check_of,
    choose_signature,
    commit_verdict,
    conclude,
    expected_good_verdicts,
    failure_stage,
    merge_outcomes,
    overall_confidence,
    pooled_rate,
    runs_needed,
    weak_again,
)
from orchestrator.boot import BootLimits
from orchestrator.config import ConfigRequest
from orchestrator.errors import InfrastructureError, UsageError
from orchestrator.gitrepo import Repo, Worktree, private_worktree
from orchestrator.layout import RunDir
from orchestrator.paths import write_atomically
from orchestrator.plan import Plan, load_plan, repeated, select_steps
from orchestrator.results import ProblemKind, Status

INFRA_ATTEMPTS = 3  # an infrastructure error is retried this often, then the bisection aborts (resumable)

# tester(commit, steps, repeats): what testing the plan's named steps, each repeated in one boot, gave.
Tester = Callable[[str, tuple[str, ...], int], Outcome]


@dataclass
class Record:
    """One tested commit: the unit of the terminal, the JUnit file and the state file."""

    role: str  # "bad end", "good end", "bisect", or a check's name
    commit: str
    subject: str
    verdict: Judgement | None  # None while the commit is being tested
    why: str
    matching: int = 0
    runs: int = 0
    confidence: float = 1.0
    other: tuple[str, ...] = ()
    build_seconds: float = 0.0
    boot_seconds: float = 0.0
    seconds: float = 0.0
    detail: str = ""

    def as_verdict(self) -> CommitVerdict:
        assert self.verdict is not None
        return CommitVerdict(self.verdict, self.why, self.matching, self.runs, self.confidence, tuple(self.other))


@dataclass
class BisectState:
    """Everything a bisection knows; bisect.json is this, written after every step."""

    arguments: dict
    good: str
    bad: str
    signature: Signature | None = None
    reproduction: dict = field(default_factory=dict)
    rate: float = 0.0
    runs_per_commit: int = 0
    records: list[Record] = field(default_factory=list)
    bisect_log: str = ""
    conclusion: dict | None = None

    def to_json(self) -> str:
        data = dataclasses.asdict(self)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "BisectState":
        data = json.loads(text)
        data["signature"] = Signature.from_dict(data["signature"]) if data.get("signature") else None
        data["records"] = [Record(**{**record, "other": tuple(record["other"]),
                                     "verdict": Judgement(record["verdict"]) if record["verdict"] else None})
                           for record in data["records"]]
        return cls(**data)

    def record_for(self, role: str) -> Record | None:
        return next((record for record in self.records if record.role == role), None)


class Bisection:
    def __init__(self, repo: Repo, worktree: Worktree, tester: Tester, state: BisectState, steps: tuple[str, ...],
                 announce: Callable[[str], None] = print, save: Callable[[BisectState], None] = lambda state: None):
        self.repo, self.worktree, self.tester, self.state = repo, worktree, tester, state
        self.steps, self.announce, self.save = steps, announce, save

    def run(self) -> Conclusion:
        stop = self._check_ends()
        if stop is not None:
            return stop
        first_bad, candidates = self._bisect()
        if not first_bad:
            checks = ()
        else:
            checks = self._verify(first_bad)
        confidence = overall_confidence(
            [record.as_verdict() for record in self.state.records if record.verdict == Judgement.GOOD], self.state.rate)
        return conclude(first_bad, candidates, confidence, checks)

    def _check_ends(self) -> Conclusion | None:
        state = self.state
        if state.signature is None:
            outcome, record = self._test(state.bad, "bad end", self.steps, REPRO_RUNS)
            if outcome.stage != CommitStage.TESTED:
                verdict = commit_verdict(outcome, Signature(self.steps[0], ProblemKind.EXIT), 0.0)
                self._finish_record(record, verdict.verdict, verdict.why)
                return Conclusion(Ending.UNTESTABLE_END, f"BAD cannot be tested: {verdict.why}")
            reproduction = choose_signature(outcome, self.steps)
            if reproduction.signature is None:
                self._finish_record(record, Judgement.GOOD, f"not reproduced: {reproduction.runs} runs pass")
                return Conclusion(Ending.NOT_REPRODUCED, f"not reproduced at BAD {state.bad[:12]}: all "
                                                    f"{reproduction.runs} runs of {', '.join(self.steps)} pass")
            runs = runs_needed(reproduction.rate, expected_good_verdicts(self._range_size()),
                               crash=reproduction.signature.kind == "crash")
            self._finish_record(record, Judgement.BAD, f"{reproduction.matching} of {reproduction.runs} runs show "
                                               f"{reproduction.signature}", reproduction)
            if runs is None:
                return Conclusion(Ending.LOW_CONFIDENCE, f"the failure shows in {reproduction.matching} of "
                                                    f"{reproduction.runs} runs at BAD: too rare to reach the "
                                                    f"confidence bar within the runs a commit may take")
            state.signature, state.rate, state.runs_per_commit = reproduction.signature, reproduction.rate, runs
            state.reproduction = {"matching": reproduction.matching, "runs": reproduction.runs,
                                  "seen": list(reproduction.seen)}
            self.announce(f"gupvm bisect: following {state.signature}; it shows in {reproduction.matching} of "
                          f"{reproduction.runs} runs at BAD (rate >= {state.rate:.2f}); {runs} run(s) per commit")
            self.save(state)
        if self.state.record_for("good end") is None:
            verdict = self._judge(state.good, "good end")
            if verdict.matching:
                return Conclusion(Ending.GOOD_FAILS, f"GOOD fails too: {verdict.why} at {state.good[:12]}")
            if verdict.verdict != Judgement.GOOD:
                return Conclusion(Ending.UNTESTABLE_END, f"GOOD cannot be tested: {verdict.why}")
        return None

    def _range_size(self) -> int:
        return int(self.repo.git("rev-list", "--count", f"{self.state.good}..{self.state.bad}").stdout)

    def _bisect(self) -> tuple[str, tuple[str, ...]]:
        state = self.state
        position = (self.worktree.bisect_replay(state.bisect_log) if state.bisect_log
                    else self.worktree.bisect_start(state.bad, state.good))
        state.bisect_log = self.worktree.bisect_log()
        self.save(state)
        while not position.done:
            commit = position.next
            verdict = self._judge(commit, "bisect")
            rate = pooled_rate(state.rate, [(record.matching, record.runs) for record in state.records
                                            if record.verdict == Judgement.BAD])
            if rate < state.rate:  # it shows less often than measured at BAD: more runs keep the confidence
                state.rate = rate
                needed = runs_needed(rate, expected_good_verdicts(self._range_size()),
                                     crash=state.signature.kind == "crash")
                state.runs_per_commit = max(state.runs_per_commit, needed or MAX_RUNS)
                self.announce(f"gupvm bisect: the rate is now taken as {rate:.2f}: "
                              f"{state.runs_per_commit} run(s) per commit")
            position = self.worktree.bisect_mark(verdict.verdict, commit)
            state.bisect_log = self.worktree.bisect_log()
            self.save(state)
        return position.first_bad, position.candidates

    def _verify(self, culprit: str) -> tuple:
        fails = self._judge(culprit, CULPRIT_FAILS)
        passes = self._judge(self.repo.parent(culprit), PARENT_PASSES)
        self.worktree.checkout(self.state.bad)
        if self.worktree.revert(culprit):
            revert = self._judge(self.worktree.head(), REVERT_PASSES)
            revert_check = check_of(REVERT_PASSES, revert, Judgement.GOOD)
        else:
            revert_check = check_of(REVERT_PASSES, None, Judgement.GOOD, "the revert does not apply cleanly on BAD")
        return (check_of(CULPRIT_FAILS, fails, Judgement.BAD), check_of(PARENT_PASSES, passes, Judgement.GOOD),
                revert_check)

    def _judge(self, commit: str, role: str) -> CommitVerdict:
        """Test a commit for the signature, a second time if one run only showed it."""
        signature = self.state.signature
        assert signature is not None
        outcome, record = self._test(commit, role, (signature.step,), self.state.runs_per_commit)
        verdict = commit_verdict(outcome, signature, self.state.rate)
        if verdict.verdict == "weak":
            self.announce(f"  {'':<20} {commit[:12]} {verdict.why}: testing again")
            again, again_record = self._test(commit, role, (signature.step,), self.state.runs_per_commit,
                                             record=False)
            record.seconds += again_record.seconds
            outcome = merge_outcomes(outcome, again)
            verdict = weak_again(commit_verdict(outcome, signature, self.state.rate))
        record.build_seconds, record.boot_seconds = outcome.build_seconds, outcome.boot_seconds
        self._finish_record(record, verdict.verdict, verdict.why, details=verdict)
        return verdict

    def _test(self, commit: str, role: str, steps: tuple[str, ...], repeats: int,
              record: bool = True) -> tuple[Outcome, Record]:
        info = self.repo.commit_info(commit)
        started = time.monotonic()
        for attempt in range(1, INFRA_ATTEMPTS + 1):
            try:
                outcome = self.tester(commit, steps, repeats)
            except InfrastructureError as error:
                outcome = Outcome(CommitStage.INFRA, detail=str(error).splitlines()[0])
            if outcome.stage != CommitStage.INFRA:
                break
            self.announce(f"  {role:<20} {info.short} infrastructure error (attempt {attempt} of "
                          f"{INFRA_ATTEMPTS}): {outcome.detail}")
        else:
            self.save(self.state)
            raise InfrastructureError(f"{info.short}: infrastructure failed {INFRA_ATTEMPTS} times "
                                      f"({outcome.detail}); continue with --resume once it is fixed")
        why = outcome.detail if outcome.stage != CommitStage.TESTED else ""
        entry = Record(role, commit, info.subject, Judgement.SKIP if outcome.stage != CommitStage.TESTED else None, why,
                       build_seconds=outcome.build_seconds, boot_seconds=outcome.boot_seconds,
                       seconds=time.monotonic() - started, detail=outcome.detail)
        if record:
            self.state.records.append(entry)
        return outcome, entry

    def _finish_record(self, record: Record, verdict: str, why: str, reproduction: Reproduction | None = None,
                       details: CommitVerdict | None = None) -> None:
        record.verdict, record.why = verdict, why
        if details is not None:
            record.matching, record.runs, record.confidence, record.other = (
                details.matching, details.runs, details.confidence, details.other)
        if reproduction is not None:
            record.matching, record.runs = reproduction.matching, reproduction.runs
        self.announce(step_line(record))
        self.save(self.state)


def step_line(record: Record) -> str:
    timing = f"{record.seconds:.0f} s"
    if record.build_seconds or record.boot_seconds:
        timing += f": build {record.build_seconds:.0f} s, boot {record.boot_seconds:.0f} s"
    subject = record.subject if len(record.subject) <= 50 else record.subject[:47] + "..."
    return f"  {record.role:<20} {record.commit[:12]} {subject:<50} {record.verdict.upper():<5} {record.why} " \
           f"({timing})"


def closing_lines(conclusion: Conclusion, repo: Repo) -> list[str]:
    lines = [f"gupvm bisect: {conclusion.message}"]
    if conclusion.culprit:
        info = repo.commit_info(conclusion.culprit)
        # Only a confirmed culprit is named as one: a check that failed may mean git bisect was misled.
        label = "first bad commit" if conclusion.outcome == Ending.CULPRIT else "unconfirmed candidate"
        lines += [f"  {label}: {info.sha} {info.subject}", f"  author: {info.author}"]
    for candidate in conclusion.candidates:
        lines.append(f"  candidate: {repo.commit_info(candidate).short} {repo.commit_info(candidate).subject}")
    if conclusion.confidence:
        lines.append(f"  confidence: {conclusion.confidence:.3f}")
    for check in conclusion.checks:
        lines.append(f"  check: {check.name}: {check.status}" + (f" ({check.detail})" if check.detail else ""))
    return lines


_JUNIT_STATUS = {Judgement.GOOD: "passed", Judgement.BAD: "failed", Judgement.SKIP: "skipped", Judgement.INFRA: "error"}


def junit_cases(state: BisectState) -> list[report.JudgedCase]:
    cases = []
    for record in state.records:
        status = _JUNIT_STATUS.get(record.verdict, "error")
        if record.role == "bad end" and record.verdict == Judgement.BAD:
            status = "passed"  # the failure reproduced, as it should
        if record.role == CULPRIT_FAILS and record.verdict == Judgement.BAD:
            status = "passed"
        message = f"{record.verdict}: {record.why}"
        cases.append(report.JudgedCase(
            name=f"{record.role}: {record.commit[:12]} {record.subject}",
            classname="commits",
            failure=message if status == "failed" else "",
            skipped=message if status == "skipped" else "",
            error=message if status == "error" else "",
            failure_type="failed",
            seconds=record.seconds,
            detail=json.dumps(dataclasses.asdict(record), indent=2),
        ))
    return cases


@dataclass(frozen=True)
class BisectRequest:
    """What a bisection is asked: bisect.json keeps it as its arguments, and --resume restores it."""

    kernel_src: str  # a git checkout
    good: str
    bad: str
    arch: str
    plan: str
    step: tuple[str, ...]  # the plan's steps to bisect; empty: all
    kconfig: tuple[str, ...]  # fragment paths, absolute
    kconfig_add: tuple[str, ...]
    accel: str
    boot_timeout: float
    run_timeout: float

    @classmethod
    def from_arguments(cls, data: dict) -> "BisectRequest":
        """bisect.json's arguments, as this gupvm or an earlier one (arch as a list, lists for tuples) wrote them."""
        values = {field.name: data[field.name] for field in dataclasses.fields(cls)}
        arch = values["arch"]
        values["arch"] = (arch[0] if arch else DEFAULT_ARCH) if isinstance(arch, list | type(None)) else arch
        for name in ("step", "kconfig", "kconfig_add"):
            values[name] = tuple(values[name] or ())
        return cls(**values)

    @property
    def limits(self) -> BootLimits:
        return BootLimits(self.boot_timeout, self.run_timeout)


@dataclass(frozen=True)
class Workplace:
    """Where this invocation works; not restored by --resume, which may run elsewhere."""

    jobs: int
    cache_dir: Path
    out: Path
    junit: Path | None


def load_state(path: Path) -> BisectState:
    try:
        return BisectState.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(f"--resume {path}: not a gupvm bisect.json ({error})") from None


def run_command(request: BisectRequest, place: Workplace, new_run_dir: Callable[[Path], Path],
                reporter: progress.Reporter, resumed: tuple[BisectState, Path] | None = None) -> tuple[int, list[str]]:
    """Check what can be checked without building, then bisect; resumed: an earlier bisection's state and file.

    Each commit's stages (config, build, boot) show on the reporter as a run's do, beneath a line per tested
    commit; returns the exit code and the closing lines, printed once the reporter is done."""
    arches = select_arches([request.arch])
    if len(arches) != 1:
        raise UsageError("--arch: bisect one arch at a time")
    arch = arches[0]
    plan = load_plan(request.plan)
    steps = select_steps(plan, request.step)
    config_request = ConfigRequest.for_plans(arch, [Path(path) for path in request.kconfig], list(request.kconfig_add),
                                             (steps,))
    repo = Repo(Path(request.kernel_src))
    good, bad = repo.resolve(request.good), repo.resolve(request.bad)
    if good == bad or not repo.is_ancestor(good, bad):
        raise UsageError(f"--good {request.good} is not an ancestor of --bad {request.bad}; give an older good commit")
    if resumed is None:
        state = BisectState(arguments=dataclasses.asdict(dataclasses.replace(request, kernel_src=str(repo.path))),
                            good=good, bad=bad)
        run_dir = new_run_dir(place.out).resolve()
    else:
        state, state_file = resumed
        run_dir = state_file.resolve().parent
    state_path = run_dir / layout.BISECT_STATE
    junit_path = place.junit or RunDir(run_dir).junit

    def save(current: BisectState) -> None:
        write_atomically(state_path, current.to_json())

    save(state)
    reporter.note(f"gupvm bisect: {repo.path} good {good[:12]} bad {bad[:12]}, {arch.name}, plan {plan.name} "
                  f"({', '.join(step.name for step in steps.steps)}); state in {state_path}")
    try:
        with private_worktree(repo, place.cache_dir, bad, "bisect") as worktree:
            tester = KernelTester(worktree, arch, config_request, steps, request, place, run_dir, reporter)
            bisection = Bisection(repo, worktree, tester, state, tuple(step.name for step in steps.steps),
                                  announce=reporter.note, save=save)
            conclusion = bisection.run()
    finally:
        save(state)
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        junit_path.write_text(report.verdicts_junit_xml(
            "gupvm bisect", {"good": good, "bad": bad, "arch": arch.name, "plan": plan.name}, junit_cases(state)))
    state.conclusion = dataclasses.asdict(conclusion)
    save(state)
    return conclusion.exit_code, [*closing_lines(conclusion, repo),
                                  f"gupvm bisect: state and results in {state_path}, JUnit in {junit_path}"]


class KernelTester:
    """Tests a commit for real: checkout in the private worktree, build, boot the repeated steps."""

    def __init__(self, worktree: Worktree, arch, config_request: ConfigRequest, plan: Plan, request: BisectRequest,
                 place: Workplace, run_dir: Path, reporter: progress.Reporter):
        self.worktree, self.arch, self.config_request, self.plan = worktree, arch, config_request, plan
        self.request, self.place, self.run_dir, self.reporter, self.count = request, place, run_dir, reporter, 0

    def __call__(self, commit: str, steps: tuple[str, ...], repeats: int) -> Outcome:
        self.count += 1
        if self.worktree.head() != commit:
            self.worktree.checkout(commit)
        commit_run = layout.commit_run(self.run_dir, self.count, commit)
        commit_run.path.mkdir(parents=True, exist_ok=True)
        try:
            kernel_source = source.resolve(str(self.worktree.path), self.place.cache_dir)
            run_options = pipeline.RunOptions(
                targets=pipeline.single_kernel_targets(kernel_source, str(self.worktree.path),
                                                       ((self.arch, self.config_request),),
                                                       repeated(select_steps(self.plan, steps), repeats)),
                jobs=self.place.jobs,
                accel=self.request.accel,
                cache_dir=self.place.cache_dir,
                run_dir=commit_run.path,
                limits=self.request.limits,
            )
            suite = pipeline.run(run_options, self.reporter)[0]
        except UsageError as error:  # the arguments were checked already: this tree cannot serve them
            return Outcome(CommitStage.CONFIG, detail=str(error).splitlines()[0])
        except InfrastructureError as error:
            return Outcome(CommitStage.INFRA, detail=str(error).splitlines()[0])
        except Exception as error:  # noqa: BLE001 - a tester's own failure is infrastructure, and is retried
            (commit_run.path / layout.TRACEBACK).write_text(traceback.format_exc())
            return Outcome(CommitStage.INFRA, detail=f"{type(error).__name__}: {error}")
        report.write_reports([suite], commit_run)
        stage = failure_stage(suite.build, suite.boot)
        if stage is not None:
            failed = suite.build if suite.build.status == Status.FAILED else suite.boot
            said = [line.strip() for line in failed.detail.splitlines()[1:] if line.strip()]  # the error lines
            detail = failed.message.split(";")[0] + (f": {said[0]}" if said else "")
            return Outcome(stage, detail=detail, build_seconds=suite.build.seconds,
                           boot_seconds=suite.boot.seconds)
        return Outcome(CommitStage.TESTED, tuple(StepRun.of(step) for step in suite.steps),
                       build_seconds=suite.build.seconds, boot_seconds=suite.boot.seconds)
