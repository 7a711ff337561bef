"""Known failures: what a kernel of the range really gets wrong, each with the public upstream fix or report that
explains it (orchestrator/known_failures.toml).

A step's problems that an entry for its kernel version and arch explains
make it a known failure (not failing: the run stays green for it, and says
the reference); one problem or KTAP result no entry explains fails the step
as before. An entry that applies to a step that had nothing for it to
explain is reported as unexpectedly passing: the bug may be fixed there, and
the entry wants narrowing.
"""

import dataclasses
import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.plan import base_name, version_tuple
from orchestrator.results import Problem, ProblemKind, Status, StepResult

KNOWN_FAILURES = Path(__file__).resolve().parent / "known_failures.toml"
_KEYS = ("step", "kind", "cases", "from", "until", "arches", "reference", "why")


@dataclass(frozen=True)
class KnownFailure:
    step: str  # the plan step's name
    kind: ProblemKind  # the problem it explains
    reference: str  # the upstream fix or report, a public address
    why: str
    cases: tuple[str, ...] = ()  # for KTAP: the results it explains (text each failing result's name contains)
    since: str = ""  # kernel versions it applies to, inclusive, major.minor (empty: no bound)
    until: str = ""
    arches: tuple[str, ...] = ()  # empty: every arch

    def applies(self, step_name: str, kernel_version: str, arch: str) -> bool:
        version = version_tuple(kernel_version)[:2]
        return (self.step == base_name(step_name) and (not self.arches or arch in self.arches)
                and (not self.since or version >= version_tuple(self.since))
                and (not self.until or version <= version_tuple(self.until)))

    def explains(self, problem: Problem, subject: str) -> bool:
        return problem.kind == self.kind and (not self.cases or any(case in subject for case in self.cases))


@functools.cache
def known_failures(path: Path = KNOWN_FAILURES) -> tuple[KnownFailure, ...]:
    entries = []
    for number, entry in enumerate(tomllib.loads(path.read_text()).get("known", []), start=1):
        if unknown := set(entry) - set(_KEYS):
            raise ValueError(f"{path}: entry {number} has unknown keys {sorted(unknown)}")
        if not entry.get("reference", "").startswith("https://"):
            raise ValueError(f"{path}: entry {number} needs a reference: the https:// address of the upstream fix "
                             "or report that explains it")
        entries.append(KnownFailure(entry["step"], ProblemKind(entry["kind"]), entry["reference"], entry["why"],
                                    tuple(entry.get("cases", ())), entry.get("from", ""), entry.get("until", ""),
                                    tuple(entry.get("arches", ()))))
    return tuple(entries)


def apply(result: StepResult, kernel_version: str, arch: str,
          entries: tuple[KnownFailure, ...] | None = None) -> StepResult:
    """The step's result with its known failures recognised (see the module's docstring)."""
    entries = tuple(entry for entry in (known_failures() if entries is None else entries)
                    if entry.applies(result.step.name, kernel_version, arch))
    if not entries or not result.status.ran:
        return result
    left: list[Problem] = []
    used: dict[KnownFailure, None] = {}
    explained: list[str] = []
    for problem in result.problems:
        subjects = problem.about or ("",)
        unexplained = []
        for subject in subjects:
            if entry := next((entry for entry in entries if entry.explains(problem, subject)), None):
                used[entry] = None
                explained.append(subject)
            else:
                unexplained.append(subject)
        if unexplained:
            left.append(dataclasses.replace(problem, about=tuple(subject for subject in unexplained if subject)))
    if explained and not any(problem.kind == ProblemKind.KTAP for problem in left):
        # A KTAP program exits non-zero for its failed results: with all of them explained, so is its exit.
        left = [problem for problem in left if problem.kind != ProblemKind.EXIT]
    references = tuple(dict.fromkeys(entry.reference for entry in used))
    unexpected = tuple(entry.reference for entry in entries if entry not in used)
    notes = [f"known failure ({entry.why}): {entry.reference}" for entry in used]
    notes += [f"unexpectedly passing: known to fail here ({entry.why}), {entry.reference}"
              for entry in entries if entry not in used]
    if left:
        return dataclasses.replace(result, problems=tuple(left), known=references, known_subjects=tuple(explained),
                                   unexpectedly_passing=unexpected,
                                   message="; ".join([problem.sentence for problem in left] + notes))
    return dataclasses.replace(result, status=Status.KNOWN_FAILURE if used else result.status, problems=(),
                               known=references, known_subjects=tuple(explained), unexpectedly_passing=unexpected,
                               message="; ".join(notes))
