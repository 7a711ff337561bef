"""Two runs at once on one cache, with two configs of one tree and arch.

Each config has a build directory of its own, so both finish, and a rerun
of either finds its kernel still built. The second config is the LKDTM
fault plan's, asked for with --kconfig-add: it shares its build with
test_faults.py.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.manual]  # two kernel builds of their own: beyond CI's time

ONE_STEP_PLAN = '[[step]]\nname = "pin_basic"\nargs = ["-b"]\nexpect = "pin"\n'
CONFIGS = {
    "default": [],
    "lkdtm": ["--kconfig-add", "CONFIG_RUNTIME_TESTING_MENU=y", "--kconfig-add", "CONFIG_LKDTM=y",
              "--kconfig-add", "CONFIG_SOFTLOCKUP_DETECTOR=y"],
}


def start(tmp_path: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--plan", str(tmp_path / "one.toml"),
         "--out", str(tmp_path / name), *CONFIGS[name.split("-")[0]]],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def results(tmp_path: Path, name: str) -> dict:
    return json.loads(next((tmp_path / name).iterdir()).joinpath("results.json").read_text())[0]


def test_two_configs_at_once_both_finish_and_neither_rebuilds_the_other(tmp_path: Path):
    (tmp_path / "one.toml").write_text(ONE_STEP_PLAN)
    runs = {name: start(tmp_path, name) for name in CONFIGS}
    for name, run in runs.items():
        output, _ = run.communicate(timeout=3600)
        assert run.returncode == 0, (name, output)
    first = {name: results(tmp_path, name) for name in CONFIGS}
    assert first["default"]["properties"]["config_hash"] != first["lkdtm"]["properties"]["config_hash"]
    for name in CONFIGS:  # one after the other now: each finds its own kernel
        rerun = start(tmp_path, f"{name}-again")
        output, _ = rerun.communicate(timeout=3600)
        assert rerun.returncode == 0, output
        again = results(tmp_path, f"{name}-again")
        assert again["properties"]["kernel_build"] == "cached", name
        assert again["properties"]["config_hash"] == first[name]["properties"]["config_hash"]
