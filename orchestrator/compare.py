"""Comparing two sides' runs: step verdicts, timing verdicts and the hosts they came from.

A side is one or more run directories (each `gupvm run` is one boot per
arch); the results.json files are all that is read, so runs made elsewhere,
for example main's in CI, compare offline.
"""

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from orchestrator import exit_codes
from orchestrator.errors import UsageError
from orchestrator.hostfacts import COMPARED_FACTS
from orchestrator.layout import RunDir
from orchestrator.results import Status
from orchestrator.samples import METRICS
from orchestrator.step_compare import Change, StepOutcome, StepVerdict, classify_all
from orchestrator.timing_stats import CLOCK_POLICIES, Comparison, compare_all

DEFAULT_CLOCK = "realtime"  # runs made before gupvm had --clock timed in real time


@dataclass(frozen=True)
class Run:
    path: Path
    suites: tuple[dict, ...]  # as results.json has them


@dataclass(frozen=True)
class CompareResult:
    base_runs: tuple[Path, ...]
    head_runs: tuple[Path, ...]
    clock: str
    host_differences: dict[str, tuple[list[str], list[str]]]  # fact -> (base's values, head's values)
    steps: tuple[StepVerdict, ...]
    timings: tuple[Comparison, ...]
    samples: dict[str, tuple[list[list[float]], list[list[float]]]]  # metric -> (base boots, head boots)
    fail_on_slower: float | None
    base_broken: tuple[str, ...]  # base builds or boots that failed: nothing to compare against there

    @property
    def across_hosts(self) -> bool:
        return bool(self.host_differences)

    @property
    def new_failures(self) -> list[StepVerdict]:
        return [step for step in self.steps if step.kind == Change.NEW_FAILURE]

    @property
    def slowdowns(self) -> list[Comparison]:
        if self.fail_on_slower is None:
            return []
        return [timing for timing in self.timings if timing.slower_beyond(self.fail_on_slower)]

    @property
    def exit_code(self) -> int:
        if self.new_failures or self.slowdowns:
            return exit_codes.TEST_FAILED
        return exit_codes.INFRASTRUCTURE if self.base_broken else exit_codes.PASSED


def find_runs(path: Path) -> list[Path]:
    """A run directory, or a directory of them (a presubmit's side)."""
    if RunDir(path).results.is_file():
        return [path]
    runs = sorted(child for child in path.glob("*") if RunDir(child).results.is_file()) if path.is_dir() else []
    if not runs:
        raise UsageError(f"{path}: no results.json in it or in its subdirectories; give a run directory that "
                         f"'gupvm run' made (it prints its path)")
    return runs


def load_run(path: Path) -> Run:
    """A run directory's results.json, refused in one line when it is not one."""
    try:
        suites = json.loads(RunDir(path).results.read_text())
        if not isinstance(suites, list) or not all("properties" in suite and "steps" in suite for suite in suites):
            raise ValueError("not a list of suites with properties and steps")
    except (OSError, ValueError) as error:
        raise UsageError(f"{RunDir(path).results}: unreadable ({error}); give a run directory of 'gupvm run'") \
            from None
    return Run(path, tuple(suites))


def _arch(suite: dict) -> str:
    return suite["properties"].get("arch", suite["name"])


def step_outcomes(runs: Sequence[Run]) -> dict[str, list[StepOutcome]]:
    """Each arch's build, boot and steps, over the runs of a side."""
    outcomes: dict[str, list[StepOutcome]] = {}
    for run in runs:
        for suite in run.suites:
            arch = _arch(suite)
            for stage in ("build", "boot"):
                status = Status(suite[stage]["status"])
                if status != Status.SKIPPED:  # a boot skipped after a failed build says nothing new
                    outcomes.setdefault(f"{arch}/{stage}", []).append(StepOutcome(status, suite[stage]["message"]))
            for step in suite["steps"]:
                outcomes.setdefault(f"{arch}/{step['name']}", []).append(
                    StepOutcome(Status(step["status"]), step["message"]))
    return outcomes


def metric_samples(runs: Sequence[Run]) -> dict[str, list[list[float]]]:
    """metric -> one list of samples per boot, from the steps that passed."""
    samples: dict[str, list[list[float]]] = {}
    for run in runs:
        for suite in run.suites:
            for step in suite["steps"]:
                if step["status"] != Status.PASSED:
                    continue
                for metric in METRICS:
                    if values := step.get("samples", {}).get(metric):
                        samples.setdefault(f"{_arch(suite)}/{step['name']}/{metric}", []).append(
                            [float(value) for value in values])
    return samples


def facts(runs: Sequence[Run]) -> dict[str, list[str]]:
    found: dict[str, set[str]] = {}
    for run in runs:
        for suite in run.suites:
            properties = suite["properties"]
            if "accel" not in properties:  # built but never booted: it timed nothing
                continue
            for fact in COMPARED_FACTS:
                default = DEFAULT_CLOCK if fact == "clock" else "unrecorded"
                found.setdefault(fact, set()).add(properties.get(fact, default))
    return {fact: sorted(values) for fact, values in found.items()}


def compare(
    base_runs: Sequence[Run], head_runs: Sequence[Run], fail_on_slower: float | None = None
) -> CompareResult:
    """Each step's and stage's verdict over both sides' runs, and each timing metric's, with the hosts' differences."""
    base_facts, head_facts = facts(base_runs), facts(head_runs)
    differences = {
        fact: (base_facts.get(fact, []), head_facts.get(fact, []))
        for fact in COMPARED_FACTS
        if base_facts.get(fact, []) != head_facts.get(fact, []) or len(base_facts.get(fact, [])) > 1
    }
    clocks = sorted(set(base_facts.get("clock", [])) | set(head_facts.get("clock", []))) or [DEFAULT_CLOCK]
    base_samples, head_samples = metric_samples(base_runs), metric_samples(head_runs)
    names = list(head_samples) + [name for name in base_samples if name not in head_samples]
    samples = {name: (base_samples.get(name, []), head_samples.get(name, [])) for name in names}
    timings = compare_all(samples, CLOCK_POLICIES[clocks[0]])
    if len(clocks) > 1:
        timings = [dataclasses.replace(timing, verdict="unknown", reason=f"timed with different clocks "
                                       f"({' and '.join(clocks)}): not comparable") for timing in timings]
    base_outcomes = step_outcomes(base_runs)
    broken = tuple(
        name for name, outcomes in base_outcomes.items()
        if name.endswith(("/build", "/boot")) and all(outcome.status.failing for outcome in outcomes)
    )
    return CompareResult(
        base_runs=tuple(run.path for run in base_runs),
        head_runs=tuple(run.path for run in head_runs),
        clock=" and ".join(clocks),
        host_differences=differences,
        steps=tuple(classify_all(base_outcomes, step_outcomes(head_runs))),
        timings=tuple(timings),
        samples=samples,
        fail_on_slower=fail_on_slower,
        base_broken=broken,
    )
