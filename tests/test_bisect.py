"""The bisection on scripted histories (the model: syzkaller's pkg/bisect/bisect_test.go).

A real git repository of 33 commits (0 is GOOD, 32 is BAD) and a scripted
tester that says, for each commit, what building and running it gives:
breaks at every position, unbuildable and unbootable commits, flaky
failures at several rates (fixed seeds), a different failure, infrastructure
errors, endpoints that do not reproduce. No kernels.
"""

import dataclasses
import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from git_history import make_repo, repo_state

from orchestrator.bisect import Bisection, BisectState
from orchestrator.bisect_verdict import CULPRIT_FAILS, PARENT_PASSES, REVERT_PASSES, Outcome, Signature, StepRun
from orchestrator.errors import InfrastructureError
from orchestrator.gitrepo import Repo, private_worktree

COMMITS = 33
STEPS = ("gup_basic", "pin_basic")
OTHER = Signature("pin_basic", "splat", "WARNING at unrelated_function (mm/other.c)")


@dataclass(frozen=True)
class Script:
    culprit: int | None  # the first commit that shows the break; None: none does
    rate: float = 1.0  # how often a broken commit shows it
    kind: str = "imbalance"
    build_broken: frozenset[int] = frozenset()
    boot_broken: frozenset[int] = frozenset()
    config_unmet: frozenset[int] = frozenset()
    other_failure: frozenset[int] = frozenset()  # a different failure shows, always, in every run
    infra: dict[int, int] = field(default_factory=dict)  # commit -> infrastructure errors before it works
    revert_fixes: bool = True
    good: int = 0
    bad: int = COMMITS - 1
    seed: int = 0


@dataclass(frozen=True)
class Expect:
    outcome: str
    culprit: int | None = None
    candidates: frozenset[int] = frozenset()
    checks: dict[str, str] = field(default_factory=dict)
    skipped: frozenset[int] = frozenset()  # commits the bisection had to skip
    message: str = ""


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> tuple[Repo, list[str]]:
    repo = Repo(make_repo(tmp_path_factory.mktemp("history") / "linux", COMMITS))
    return repo, repo.git("rev-list", "--reverse", "HEAD").stdout.split()


class ScriptedTester:
    def __init__(self, script: Script, repo: Repo, commits: list[str]):
        self.script, self.repo, self.commits = script, repo, commits
        self.random = random.Random(script.seed)
        self.calls: list[tuple[int, tuple[str, ...], int]] = []
        self.infra_left = dict(script.infra)

    def index(self, commit: str) -> int:
        if commit in self.commits:
            return self.commits.index(commit)
        # The revert of the culprit on BAD: as good as the culprit's parent if the revert fixes it.
        assert self.repo.commit_info(commit).subject.startswith("Revert")
        return self.script.culprit - 1 if self.script.revert_fixes else self.script.bad

    def __call__(self, commit: str, steps: tuple[str, ...], repeats: int) -> Outcome:
        script, index = self.script, self.index(commit)
        self.calls.append((index, steps, repeats))
        if self.infra_left.get(index):
            self.infra_left[index] -= 1
            return Outcome("infra", detail="QEMU could not allocate memory")
        for stage, broken in (("build", script.build_broken), ("boot", script.boot_broken),
                              ("config", script.config_unmet)):
            if index in broken:
                return Outcome(stage, detail=f"scripted {stage} failure", build_seconds=1.0)
        signature = Signature("pin_basic", script.kind, "nr_foll_pin_acquired != nr_foll_pin_released")
        runs = []
        for step in steps:
            for _ in range(repeats):
                failures = []
                if step == "pin_basic" and script.culprit is not None and index >= script.culprit:
                    if self.random.random() < script.rate:
                        failures.append(signature)
                if step == "pin_basic" and index in script.other_failure:
                    failures.append(OTHER)
                runs.append(StepRun(step, tuple(failures)))
        return Outcome("tested", tuple(runs), build_seconds=1.0, boot_seconds=2.0)


def bisect(history, script: Script, tmp_path: Path, state: BisectState | None = None):
    repo, commits = history
    tester = ScriptedTester(script, repo, commits)
    state = state or BisectState(arguments={}, good=commits[script.good], bad=commits[script.bad])
    lines: list[str] = []
    with private_worktree(repo, tmp_path / "cache", commits[script.bad], "bisect") as worktree:
        conclusion = Bisection(repo, worktree, tester, state, STEPS, announce=lines.append).run()
    return conclusion, state, tester, lines


def index_of(history, sha: str) -> int:
    return history[1].index(sha)


CONFIRMED = {CULPRIT_FAILS: "held", PARENT_PASSES: "held", REVERT_PASSES: "held"}

CASES = {
    # A break at every position, deterministic.
    **{f"break-at-{n}": (Script(culprit=n), Expect("culprit", n, checks=CONFIRMED)) for n in range(1, COMMITS)},
    # Unbuildable and unbootable commits.
    "build-broken-before-culprit": (Script(culprit=17, build_broken=frozenset({16})),
                                    Expect("candidates", candidates=frozenset({16, 17}), skipped=frozenset({16}))),
    "build-broken-at-culprit": (Script(culprit=17, build_broken=frozenset({17})),
                                Expect("candidates", candidates=frozenset({17, 18}), skipped=frozenset({17}))),
    "build-broken-range-around-culprit": (Script(culprit=12, build_broken=frozenset({11, 12, 13})),
                                          Expect("candidates", candidates=frozenset({11, 12, 13, 14}))),
    "build-broken-far-from-culprit": (Script(culprit=24, build_broken=frozenset({8})),
                                      Expect("culprit", 24, checks=CONFIRMED)),
    "build-broken-on-the-first-midpoint": (Script(culprit=5, build_broken=frozenset({16})),
                                           Expect("culprit", 5, checks=CONFIRMED, skipped=frozenset({16}))),
    "boot-broken-after-culprit": (Script(culprit=9, boot_broken=frozenset({10})),
                                  Expect("culprit", 9, checks=CONFIRMED)),
    "config-unmet-on-old-commits": (Script(culprit=20, config_unmet=frozenset(range(1, 9))),
                                    Expect("culprit", 20, checks=CONFIRMED)),
    # Flaky failures, fixed seeds.
    "flaky-half": (Script(culprit=13, rate=0.5, seed=1), Expect("culprit", 13, checks=CONFIRMED)),
    "flaky-third": (Script(culprit=27, rate=0.3, seed=2), Expect("culprit", 27, checks=CONFIRMED)),
    "flaky-fifth": (Script(culprit=6, rate=0.2, seed=3), Expect("culprit", 6, checks=CONFIRMED)),
    "flaky-crash": (Script(culprit=21, rate=0.6, kind="crash", seed=4), Expect("culprit", 21, checks=CONFIRMED)),
    # It showed less often past BAD than at BAD: the good verdicts already given no longer reach the bar.
    "flaky-rate-falls-below-the-bar": (Script(culprit=21, rate=0.4, kind="crash", seed=4),
                                       Expect("low-confidence", message="below 0.9", checks=CONFIRMED)),
    "crash-every-time": (Script(culprit=3, kind="crash"), Expect("culprit", 3, checks=CONFIRMED)),
    "too-rare-to-bisect": (Script(culprit=10, rate=0.1, seed=5),
                           Expect("low-confidence", message="too rare to reach the confidence bar")),
    "shows-once-at-bad": (Script(culprit=10, rate=0.02, seed=6),
                          Expect("low-confidence", message="shows in 1 of 10 runs at BAD")),
    # A different failure: recorded, never followed.
    "different-failure-on-good-side": (Script(culprit=20, other_failure=frozenset({16})),
                                       Expect("culprit", 20, checks=CONFIRMED, skipped=frozenset({16}))),
    "different-failure-next-to-culprit": (Script(culprit=20, other_failure=frozenset({19})),
                                          Expect("candidates", candidates=frozenset({19, 20}))),
    "different-failure-with-the-signature": (Script(culprit=20, other_failure=frozenset({24, 28})),
                                             Expect("culprit", 20, checks=CONFIRMED)),
    # Infrastructure errors: retried.
    "infra-error-retried": (Script(culprit=11, infra={16: 2}), Expect("culprit", 11, checks=CONFIRMED)),
    # Endpoints that do not reproduce, or cannot be tested.
    "no-break-at-all": (Script(culprit=None), Expect("not-reproduced", message="not reproduced at BAD")),
    "good-fails-too": (Script(culprit=0), Expect("good-fails", message="GOOD fails too")),
    "good-fails-sometimes": (Script(culprit=0, rate=0.5, seed=7), Expect("good-fails", message="GOOD fails too")),
    "bad-does-not-build": (Script(culprit=5, build_broken=frozenset({32})),
                           Expect("untestable-end", message="BAD cannot be tested")),
    "good-does-not-boot": (Script(culprit=5, boot_broken=frozenset({0})),
                           Expect("untestable-end", message="GOOD cannot be tested")),
    # Verification.
    "revert-does-not-fix": (Script(culprit=14, revert_fixes=False),
                            Expect("unconfirmed", 14, checks={**CONFIRMED, REVERT_PASSES: "failed"})),
    "culprit-is-bad-end": (Script(culprit=32, good=31), Expect("culprit", 32, checks=CONFIRMED)),
}


@pytest.mark.parametrize("name", CASES)
def test_scripted_history(history, tmp_path: Path, name: str):
    script, expect = CASES[name]
    before = repo_state(history[0].path)
    conclusion, state, tester, lines = bisect(history, script, tmp_path)
    assert conclusion.outcome == expect.outcome, (conclusion, lines)
    assert expect.message in conclusion.message
    if expect.culprit is not None:
        assert index_of(history, conclusion.culprit) == expect.culprit
    if expect.candidates:
        assert {index_of(history, sha) for sha in conclusion.candidates} == expect.candidates
    assert {check.name: check.status for check in conclusion.checks} == expect.checks
    tested_skipped = {index_of(history, record.commit) for record in state.records
                      if record.verdict == "skip" and record.commit in history[1]}
    assert expect.skipped <= tested_skipped
    if conclusion.outcome == "culprit":
        assert conclusion.confidence >= 0.9
        assert conclusion.exit_code == 0
    else:
        assert conclusion.exit_code == 1
    # Only the signature's step runs past the bad end.
    assert all(steps == ("pin_basic",) for _, steps, _ in tester.calls[1:])
    assert repo_state(history[0].path) == before


def test_a_different_failure_is_recorded_not_followed(history, tmp_path: Path):
    conclusion, state, _, _ = bisect(history, Script(culprit=20, other_failure=frozenset({16})), tmp_path)
    record = next(record for record in state.records if record.commit == history[1][16])
    assert record.verdict == "skip" and "different failure" in record.why
    assert str(OTHER) in record.other


def test_flaky_runs_more_per_commit_than_deterministic(history, tmp_path: Path):
    _, steady, _, _ = bisect(history, Script(culprit=13), tmp_path / "steady")
    _, flaky, _, _ = bisect(history, Script(culprit=13, rate=0.5, seed=1), tmp_path / "flaky")
    assert steady.runs_per_commit < flaky.runs_per_commit
    assert steady.reproduction == {"matching": 10, "runs": 10, "seen": [
        "pin_basic: imbalance (nr_foll_pin_acquired != nr_foll_pin_released): 10x"]}
    assert 0.3 < flaky.rate < 0.5


def test_an_infrastructure_storm_aborts_and_resume_continues(history, tmp_path: Path):
    commits = history[1]
    state = BisectState(arguments={}, good=commits[0], bad=commits[32])
    with pytest.raises(InfrastructureError, match="infrastructure failed 3 times"):
        bisect(history, Script(culprit=11, infra={8: 3}), tmp_path / "interrupted", state)
    assert state.signature is not None and state.bisect_log
    resumed = BisectState.from_json(state.to_json())  # as --resume reads it
    conclusion, _, tester, _ = bisect(history, Script(culprit=11), tmp_path / "resumed", resumed)
    assert conclusion.outcome == "culprit" and index_of(history, conclusion.culprit) == 11
    assert tester.calls[0][0] == 8  # neither end, nor the steps before, tested again


def test_each_step_prints_commit_subject_verdict_why_and_seconds(history, tmp_path: Path):
    _, state, _, lines = bisect(history, Script(culprit=7), tmp_path)
    step_lines = [line for line in lines if line.startswith("  ")]
    assert len(step_lines) == len(state.records)
    first = step_lines[0].split()
    assert first[:3] == ["bad", "end", history[1][32][:12]]
    assert "change 32" in step_lines[0] and "BAD" in step_lines[0] and "s: build" in step_lines[0]


# Flaky histories: the seed decides which runs show the failure. For every seed a confirmed culprit is the
# right commit; a wrong candidate is only ever left unconfirmed (its checks caught it), and most seeds name it.
SWEPT = {"flaky-half": 0.9, "flaky-third": 0.75, "flaky-fifth": 0.4, "flaky-crash": 0.9}  # share named, at least
SEEDS = range(100, 150)


@pytest.mark.sweep
@pytest.mark.parametrize("name", SWEPT)
def test_a_flaky_history_never_names_a_wrong_commit_over_fifty_seeds(history, tmp_path: Path, name: str):
    script, expect = CASES[name]
    outcomes = []
    for seed in SEEDS:
        conclusion, _, _, lines = bisect(history, dataclasses.replace(script, seed=seed), tmp_path / str(seed))
        if conclusion.outcome == "culprit":
            assert index_of(history, conclusion.culprit) == expect.culprit, (seed, lines)
        assert conclusion.exit_code == (0 if conclusion.outcome == "culprit" else 1)
        outcomes.append(conclusion.outcome)
    assert outcomes.count("culprit") >= SWEPT[name] * len(SEEDS), outcomes
