"""Test plans: data files in selftests/, one step per gup_test invocation."""

import dataclasses
import itertools
import tomllib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.arches import Arch
from orchestrator.errors import UsageError
from orchestrator.paths import PLANS_DIR

EXPECTATIONS = ("pin", "get", "any")
REQUIREMENTS = ("hugetlb", "thp")


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]
    expect: str  # "pin": the pin counters must move; "get": they must not; "any": they must balance
    timeout: float
    program: str = "gup_test"  # a program built from the tree's selftests, or a busybox applet
    requires: tuple[str, ...] = ()  # "hugetlb", "thp": skipped, with the reason, where the kernel lacks them
    ktap_cases: bool = False  # each KTAP result of the program is a testcase of its own
    before_kernel: str = ""  # skipped on this kernel version and newer ...
    before_kernel_reason: str = ""  # ... for this reason

    def skip_reason(self, kernel_version: str) -> str:
        if self.before_kernel and version_tuple(kernel_version) >= version_tuple(self.before_kernel):
            return f"needs a kernel before {self.before_kernel} ({self.before_kernel_reason})"
        return ""


    def args_for(self, arch: Arch) -> tuple[str, ...]:
        """The arguments with the arch's huge page geometry filled in ({huge}, {huge_last})."""
        return tuple(arg.format(**_geometry(arch.pages_per_huge_page)) for arg in self.args)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _geometry(pages_per_huge_page: int) -> dict[str, int]:
    return {"huge": pages_per_huge_page, "huge_last": pages_per_huge_page - 1}


@dataclass(frozen=True)
class Setup:
    """What the guest prepares before the steps run."""

    hugetlb_mb: int = 0  # reserved as hugetlb pages of the arch's huge page size
    thp: str = ""  # written to /sys/kernel/mm/transparent_hugepage/enabled, e.g. "always"


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    steps: tuple[Step, ...]
    setup: Setup = Setup()


def available_plans() -> list[str]:
    return sorted(path.stem for path in PLANS_DIR.glob("*.toml"))


def load_plan(name_or_path: str) -> Plan:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = PLANS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UsageError(
            f"--plan {name_or_path}: no such plan; choose from {', '.join(available_plans())} or give a .toml file"
        )
    try:
        data = tomllib.loads(path.read_text())
        return _plan_from_data(path.stem, data)
    except (tomllib.TOMLDecodeError, KeyError, IndexError, TypeError, ValueError) as error:
        raise UsageError(f"--plan {path}: invalid plan ({error}); see selftests/smoke.toml for the format") from None


def _plan_from_data(name: str, data: dict) -> Plan:
    default_timeout = float(data.get("timeout", 120))
    steps = []
    for entry in data.get("step", []) + _expand_matrix(data.get("matrix")):
        step = Step(
            name=entry["name"],
            args=tuple(str(arg) for arg in entry["args"]),
            expect=entry["expect"],
            timeout=float(entry.get("timeout", default_timeout)),
            program=entry.get("program", "gup_test"),
            requires=tuple(entry.get("requires", ())),
            ktap_cases=bool(entry.get("ktap_cases", False)),
            before_kernel=entry.get("before_kernel", ""),
            before_kernel_reason=entry.get("before_kernel_reason", ""),
        )
        for arg in step.args:
            arg.format(**_geometry(512))  # an unknown {placeholder} fails here, not in the guest
        if step.expect not in EXPECTATIONS:
            raise ValueError(f"step {step.name}: expect must be one of {EXPECTATIONS}")
        if unknown := set(step.requires) - set(REQUIREMENTS):
            raise ValueError(f"step {step.name}: unknown requirement {sorted(unknown)}; known: {REQUIREMENTS}")
        if not step.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"step name {step.name!r}: letters, digits, - and _ only")
        steps.append(step)
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise ValueError("step names must be unique")
    if not steps:
        raise ValueError("a plan needs at least one [[step]] or a [matrix]")
    setup = Setup(**data.get("setup", {}))
    return Plan(name=name, description=data.get("description", ""), steps=tuple(steps), setup=setup)


def _expand_matrix(matrix: dict | None) -> list[dict]:
    """One step per combination of one choice from each axis, first axis slowest."""
    if not matrix:
        return []
    steps = []
    for choices in itertools.product(*matrix["axes"]):
        expects = {choice["expect"] for choice in choices if "expect" in choice}
        if len(expects) != 1:
            raise ValueError("matrix: exactly one choice of each combination must say what to expect")
        steps.append({
            "name": "-".join(choice["name"] for choice in choices),
            "args": [arg for choice in choices for arg in choice.get("args", [])],
            "requires": [need for choice in choices for need in choice.get("requires", [])],
            "expect": expects.pop(),
            **{key: matrix[key] for key in ("timeout", "program") if key in matrix},
        })
    return steps


REPEAT_MARK = "#"  # the Nth run of a step in one boot is named step#N


def base_name(step_name: str) -> str:
    """The plan step a run belongs to: 'pin_basic#3' -> 'pin_basic'."""
    return step_name.split(REPEAT_MARK, 1)[0]


def select_steps(plan: Plan, names: tuple[str, ...]) -> Plan:
    """The plan narrowed to the named steps, in the plan's order."""
    if not names:
        return plan
    known = {step.name for step in plan.steps}
    if unknown := [name for name in names if name not in known]:
        raise UsageError(f"--step {unknown[0]}: plan {plan.name} has no such step; its steps: {', '.join(known)}")
    return dataclasses.replace(plan, steps=tuple(step for step in plan.steps if step.name in names))


def repeated(plan: Plan, times: int) -> Plan:
    """Each step run `times` times in a row in one boot: step, step#2, ..., step#N (the one way to repeat steps)."""
    steps = tuple(
        dataclasses.replace(step, name=step.name if number == 1 else f"{step.name}{REPEAT_MARK}{number}")
        for step in plan.steps
        for number in range(1, times + 1)
    )
    return dataclasses.replace(plan, steps=steps)
