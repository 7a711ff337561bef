from pathlib import Path

import pytest

from orchestrator.plan import Plan, load_plan
from orchestrator.boot import StepCapture
from replay import replay

DATA = Path(__file__).parent / "data"


@pytest.fixture
def data_dir() -> Path:
    return DATA


def _replayed(log: str, plan: Plan, tmp_path_factory) -> dict[str, tuple]:
    captures = replay(DATA / log, plan, tmp_path_factory.mktemp("replay"))
    return {step.name: (step, capture) for step, capture in zip(plan.steps, captures)}


@pytest.fixture(scope="session")
def smoke_61(tmp_path_factory) -> dict[str, tuple]:
    """name -> (step, capture) of the 6.1 x86_64 smoke boot."""
    return _replayed("linux-6.1-x86_64-smoke.console.log", load_plan("smoke"), tmp_path_factory)


@pytest.fixture(scope="session")
def recovery_61(tmp_path_factory) -> dict[str, tuple]:
    """name -> (step, capture) of the 6.1 x86_64 recovery boots (panic, hang, WARNING)."""
    return _replayed("linux-6.1-x86_64-recovery.console.log", load_plan(str(DATA / "recovery.toml")),
                     tmp_path_factory)
