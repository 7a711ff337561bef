"""gupvm presubmit: what a patch series changes, failures and timings, measured against its base.

Both sides come from the user's one checkout, which is never touched: the
head is the working tree as it is (a snapshot commit, uncommitted changes
included) unless --head names a commit, the base is the merge-base with
--base or the upstream branch. Each side is checked out in turn in a kept
private worktree, so the head builds incrementally over the base, and the
base's kernel is kept by (commit, config) for the next presubmit. Boots then
alternate base and head (A B A B ...) so that drift of the host hits both
sides alike, and go on while a timing is unknown or a new failure has not
yet been seen twice, up to the clock's limit.
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from orchestrator import compare, compare_report, exit_codes, layout, pipeline, progress, report, source
from orchestrator.arches import Arch
from orchestrator.boot import BootLimits
from orchestrator.config import ConfigRequest
from orchestrator.errors import UsageError
from orchestrator.gitrepo import Repo, Worktree, kept_checkout
from orchestrator.kconfig import parse_config
from orchestrator.layout import RunDir
from orchestrator.paths import write_atomically
from orchestrator.plan import Plan
from orchestrator.report import JudgedCase
from orchestrator.results import Status
from orchestrator.step_compare import Change, StepVerdict, classify_all, to_run_again
from orchestrator.timing_stats import CLOCK_POLICIES, want_more_boots


@dataclass(frozen=True)
class Sides:
    base: str
    head: str
    base_label: str  # how the user named it
    head_label: str


@dataclass(frozen=True)
class PresubmitOptions:
    repo: Repo
    sides: Sides
    each: bool
    requests: tuple[tuple[Arch, ConfigRequest], ...]
    plan: Plan  # with its samples
    jobs: int
    accel: str
    clock: str
    cache_dir: Path
    out_dir: Path
    limits: BootLimits
    fail_on_slower: float | None
    junit: Path | None


@dataclass(frozen=True)
class CommitCheck:
    """One commit of the series (--each), against the base: its step verdicts."""

    commit: str
    subject: str
    steps: tuple[StepVerdict, ...]

    @property
    def new_failures(self) -> list[StepVerdict]:
        return [step for step in self.steps if step.kind == Change.NEW_FAILURE]


def choose_sides(repo: Repo, base_ref: str | None, head_ref: str | None) -> Sides:
    """The base (the merge-base with --base or the upstream) and the head (the working tree or --head)."""
    if head_ref:
        head, head_label = repo.resolve(head_ref), head_ref
    else:
        head = repo.snapshot()
        head_label = "the working tree" + (" (uncommitted changes included)" if head != repo.resolve("HEAD") else "")
    if base_ref is None:
        base_ref = repo.upstream()
        if base_ref is None:
            raise UsageError(f"{repo.path}: the current branch has no upstream branch to take the base from; "
                             f"give --base REF (e.g. --base origin/master or --base v6.1)")
    base = repo.merge_base(repo.resolve(base_ref), head)
    if base == head:
        raise UsageError(f"--base {base_ref}: the head ({head_label}) adds nothing to it; "
                         f"give the base the series applies to")
    return Sides(base, head, f"{base_ref} (merge-base {base[:12]})", f"{head_label} ({head[:12]})")


def config_difference(base_text: str, head_text: str) -> list[str]:
    base, head = parse_config(base_text), parse_config(head_text)
    return [f"{option}: base {base.get(option, 'n')}, head {head.get(option, 'n')}"
            for option in sorted(set(base) | set(head)) if base.get(option, "n") != head.get(option, "n")]


class _Session:
    """Builds and boots sides of one presubmit in one kept checkout; every run keeps its own directory."""

    def __init__(self, options: PresubmitOptions, worktree: Worktree, reporter: progress.Reporter):
        self.options, self.worktree, self.reporter, self.announce = options, worktree, reporter, reporter.note

    def source_at(self, commit: str) -> source.KernelSource:
        self.worktree.checkout(commit)
        tree = source.resolve(str(self.worktree.path), self.options.cache_dir)
        return dataclasses.replace(tree, identity=f"git:{self.options.repo.path}@{commit[:12]}")

    def run(self, kernel: source.KernelSource, run_dir: RunDir, plan: Plan | None) -> compare.Run:
        """One run of a side; its results read once, as compare and merge read any run's."""
        run_dir.path.mkdir(parents=True)
        run_options = pipeline.RunOptions(
            targets=self.targets(kernel, plan),
            jobs=self.options.jobs,
            accel=self.options.accel, cache_dir=self.options.cache_dir, run_dir=run_dir.path,
            limits=self.options.limits, clock=self.options.clock,
        )
        suites = pipeline.run(run_options, self.reporter)
        report.write_reports(suites, run_dir)
        return compare.load_run(run_dir.path)

    def targets(self, kernel: source.KernelSource, plan: Plan | None) -> tuple[pipeline.BuildTarget, ...]:
        return pipeline.single_kernel_targets(kernel, str(self.worktree.path), self.options.requests, plan)

    def build(self, label: str, commit: str) -> tuple[source.KernelSource, compare.Run]:
        self.announce(f"gupvm presubmit: building {label} {commit[:12]}")
        kernel = self.source_at(commit)
        return kernel, self.run(kernel, layout.presubmit_build(self.options.out_dir, label), None)


def _built(run: compare.Run) -> bool:
    return all(suite["build"]["status"] == Status.PASSED for suite in run.suites)


def config_lines(base_build: RunDir, head_build: RunDir, targets: tuple[pipeline.BuildTarget, ...]) -> list[str]:
    """What differs between the .config each side's kernel was built with, arch by arch."""
    lines = []
    for target in targets:
        base_config, head_config = base_build.config(target.build_stem), head_build.config(target.build_stem)
        if base_config.is_file() and head_config.is_file():
            difference = config_difference(base_config.read_text(), head_config.read_text())
            lines += [f"{target.arch.name}: .config differs: {line}" for line in difference]
    return lines or [".config: the same on both sides"]


def _compare_boots(
    session: _Session, base: source.KernelSource, head: source.KernelSource, announce
) -> tuple[compare.CompareResult, list[compare.Run], list[compare.Run]]:
    options = session.options
    base_runs: list[compare.Run] = []
    head_runs: list[compare.Run] = []
    while True:
        number = len(base_runs) + 1
        for label, kernel, runs in (("base", base, base_runs), ("head", head, head_runs)):
            announce(f"gupvm presubmit: boot {number} of {label}")
            runs.append(session.run(kernel, layout.presubmit_boot(options.out_dir, label, number), options.plan))
        result = compare.compare(base_runs, head_runs, options.fail_on_slower)
        if not more_boots(result, number):
            return result, base_runs, head_runs


def more_boots(result: compare.CompareResult, boots_per_side: int) -> bool:
    """Another A B pair: below the clock's minimum, while a timing is unknown or a new failure unconfirmed,
    never past the clock's limit or with a broken base."""
    policy = CLOCK_POLICIES.get(result.clock, CLOCK_POLICIES[compare.DEFAULT_CLOCK])
    if result.base_broken or boots_per_side >= policy.max_boots:
        return False
    return (boots_per_side < policy.min_boots or want_more_boots(result.timings, boots_per_side, policy)
            or bool(to_run_again(result.steps, boots_per_side)))


def _check_series(session: _Session, sides: Sides, base_runs: list[compare.Run], head_result: compare.CompareResult,
                  announce) -> list[CommitCheck]:
    """Every commit of the series against the base's boots: where does a new failure first appear?"""
    repo, options = session.options.repo, session.options
    base_outcomes = compare.step_outcomes(base_runs)
    checks = []
    for commit in repo.series(sides.base, sides.head):
        info = repo.commit_info(commit)
        if commit == sides.head:
            checks.append(CommitCheck(commit, info.subject, head_result.steps))
            continue
        kernel, build_run = session.build(f"each-{commit[:12]}", commit)
        runs = [build_run]
        while True:
            if _built(build_run):
                announce(f"gupvm presubmit: boot of {commit[:12]} {info.subject}")
                runs.append(session.run(kernel, layout.series_boot(options.out_dir, commit, len(runs)), options.plan))
            boots = runs[1:] or runs
            steps = classify_all(base_outcomes, compare.step_outcomes(boots))
            if not _built(build_run) or not to_run_again(steps, len(boots)):
                break
        checks.append(CommitCheck(commit, info.subject, tuple(steps)))
    return checks


def series_lines(checks: list[CommitCheck]) -> list[str]:
    lines = ["", "series, each commit against the base:"]
    for check in checks:
        failures = ", ".join(step.name for step in check.new_failures)
        lines.append(f"  {check.commit[:12]} {check.subject}: " + (f"NEW FAILURE {failures}" if failures else "clean"))
    first = next((check for check in checks if check.new_failures), None)
    lines.append(f"first commit with a new failure: {first.commit[:12]} {first.subject}" if first
                 else "no commit of the series has a new failure")
    return lines


def series_verdicts(checks: list[CommitCheck]) -> list[JudgedCase]:
    return [JudgedCase(f"{check.commit[:12]} {check.subject}", "series",
                       failure="new failure: " + ", ".join(f"{step.name} ({step.detail})"
                                                           for step in check.new_failures)
                       if check.new_failures else "",
                       detail="; ".join(f"{step.name}: {step.kind}" for step in check.steps
                                        if step.kind != Change.UNCHANGED))
            for check in checks]


def run(options: PresubmitOptions, reporter: progress.Reporter) -> tuple[int, list[str]]:
    """Build both sides, boot them in turn, compare; each build's and boot's stages show on the reporter as a
    run's do, beneath presubmit's own lines. Returns the exit code and the summary, printed once the reporter
    is done."""
    sides = options.sides
    announce = reporter.note
    announce(f"gupvm presubmit: base {sides.base_label}, head {sides.head_label}; results in {options.out_dir}")
    with kept_checkout(options.repo, options.cache_dir, sides.base, "presubmit") as worktree:
        session = _Session(options, worktree, reporter)
        base, base_build = session.build("base", sides.base)
        head, head_build = session.build("head", sides.head)
        differences = config_lines(RunDir(base_build.path), RunDir(head_build.path), session.targets(head, None))
        for line in differences:
            announce(line)
        checks: list[CommitCheck] = []
        if not (_built(base_build) and _built(head_build)):  # nothing to boot: the build verdicts say it all
            result = compare.compare([base_build], [head_build])
        else:
            result, base_runs, _ = _compare_boots(session, base, head, announce)
            checks = _check_series(session, sides, base_runs, result, announce) if options.each else []
    write_atomically(options.out_dir / layout.CONFIG_DIFF, "\n".join(differences) + "\n")
    junit = options.junit or RunDir(options.out_dir).junit
    compare_report.write_all(result, options.out_dir, junit, extra=series_verdicts(checks))
    lines = [f"base: {sides.base_label}", f"head: {sides.head_label}", *differences, "", compare_report.table(result)]
    if options.each:
        lines += series_lines(checks)
    lines.append(f"gupvm: presubmit in {options.out_dir} (compare.html, compare.json), JUnit in {junit}")
    return exit_code(result, checks), lines


def exit_code(result: compare.CompareResult, checks: list[CommitCheck]) -> int:
    """A new failure anywhere in the series fails the check, even where the head itself is clean."""
    if any(check.new_failures for check in checks):
        return exit_codes.TEST_FAILED
    return result.exit_code
