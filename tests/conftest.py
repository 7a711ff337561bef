import os
import uuid
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


# Every process the suite starts (gupvm, make, QEMU) inherits this mark, so
# what is still running at the end can be found, whatever its process group.
SESSION_MARK = f"GUPVM_TEST_SESSION={uuid.uuid4().hex}"
os.environ["GUPVM_TEST_SESSION"] = SESSION_MARK.split("=")[1]


def _left_running() -> list[str]:
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if SESSION_MARK.encode() in (entry / "environ").read_bytes() and \
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                left.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:200])
        except OSError:
            continue
    return left


def pytest_sessionfinish(session, exitstatus):
    """No make, QEMU or gupvm the suite started may outlive it."""
    if left := _left_running():
        print("\nprocesses the tests started are still running:\n  " + "\n  ".join(left))
        session.exitstatus = 1
