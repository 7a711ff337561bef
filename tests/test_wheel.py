"""gupvm installed from a wheel, outside the checkout, works like the checkout."""

import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.plan import available_plans

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True)
    (built,) = out.glob("gupvm-*.whl")
    return built


def test_wheel_carries_plans_fragments_arches_and_every_data_file(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"orchestrator/plans/{plan}.toml" for plan in available_plans()} <= names
    assert {f"orchestrator/kconfigs/{path.name}" for path in (ROOT / "kconfigs").glob("*.config")} <= names
    assert {f"orchestrator/arches/{arch}.toml" for arch in all_arches()} <= names
    tracked = subprocess.run(["git", "ls-files", "orchestrator", "kconfigs", "selftests"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout.split()
    installed = {name.replace("kconfigs/", "orchestrator/kconfigs/", 1).replace("selftests/", "orchestrator/plans/", 1)
                 for name in tracked}
    assert installed <= names, installed - names
    assert not any(name.startswith(("kconfigs/", "selftests/", "tests/")) for name in names)


@pytest.mark.e2e
def test_installed_wheel_builds_from_an_unrelated_directory(wheel: Path, tmp_path: Path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run([venv / "bin/pip", "install", "--quiet", str(wheel)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([venv / "bin/python", "-c", "import orchestrator; print(orchestrator.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(venv)) and not where.startswith(str(ROOT))
    version = subprocess.run([venv / "bin/gupvm", "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.startswith("gupvm ")
    result = subprocess.run([venv / "bin/gupvm", "build"], cwd=elsewhere, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    (junit,) = (elsewhere / "out").glob("*/junit.xml")
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    build = suite.find("testcase[@name='build']")
    assert build is not None and build.find("failure") is None
    wrong_plan = subprocess.run([venv / "bin/gupvm", "run", "--plan", "nosuch"], cwd=elsewhere,
                                capture_output=True, text=True)
    assert wrong_plan.returncode == 2 and f"choose from {', '.join(available_plans())} " in wrong_plan.stderr
