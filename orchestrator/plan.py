"""Test plans: data files in selftests/, one step per gup_test invocation."""

import tomllib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.paths import PLANS_DIR

EXPECTATIONS = ("pin", "get")


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]
    expect: str  # "pin": the pin counters must move; "get": they must not
    timeout: float
    program: str = "gup_test"  # a program built from the tree's selftests, or a busybox applet


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    steps: tuple[Step, ...]


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
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as error:
        raise UsageError(f"--plan {path}: invalid plan ({error}); see selftests/smoke.toml for the format") from None


def _plan_from_data(name: str, data: dict) -> Plan:
    default_timeout = float(data.get("timeout", 120))
    steps = []
    for entry in data["step"]:
        step = Step(
            name=entry["name"],
            args=tuple(str(arg) for arg in entry["args"]),
            expect=entry["expect"],
            timeout=float(entry.get("timeout", default_timeout)),
            program=entry.get("program", "gup_test"),
        )
        if step.expect not in EXPECTATIONS:
            raise ValueError(f"step {step.name}: expect must be one of {EXPECTATIONS}")
        if not step.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"step name {step.name!r}: letters, digits, - and _ only")
        steps.append(step)
    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        raise ValueError("step names must be unique")
    return Plan(name=name, description=data.get("description", ""), steps=tuple(steps))
