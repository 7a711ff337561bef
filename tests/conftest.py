from pathlib import Path

import pytest
from replay import replay

from orchestrator.plan import load_plan

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def replayed(log: str, plan_file: str, tmp_path_factory) -> dict[str, tuple]:
    """name -> (step, capture) of a captured console log, replayed with the plan it ran."""
    plan = load_plan(str(DATA / plan_file))
    captures = replay(DATA / log, plan, tmp_path_factory.mktemp("replay"))
    assert [capture.name for capture in captures] == [step.name for step in plan.steps]
    return {step.name: (step, capture) for step, capture in zip(plan.steps, captures, strict=True)}


@pytest.fixture(scope="session")
def smoke_61(tmp_path_factory) -> dict[str, tuple]:
    return replayed("6.1-x86_64-smoke.console.log", "6.1-x86_64-smoke.plan.toml", tmp_path_factory)


@pytest.fixture(scope="session")
def recovery_61(tmp_path_factory) -> dict[str, tuple]:
    """A panic, a hang and a WARNING, over three boots."""
    return replayed("6.1-x86_64-recovery.console.log", "recovery.plan.toml", tmp_path_factory)
