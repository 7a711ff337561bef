"""The command line's promises about bad input: exit 2 and one clear line, nothing started."""

import subprocess
import sys
from pathlib import Path

import pytest


def gupvm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["run", "--kernel-src", "/nonexistent"], "--kernel-src /nonexistent: no such directory"),
        (["run", "--arch", "sparc"], "unknown arch 'sparc'"),
        (["run", "--plan", "nosuch"], "--plan nosuch: no such plan"),
        (["run", "--kconfig-add", "DEBUG_VM"], "--kconfig-add 'DEBUG_VM'"),
        (["run", "--kconfig", "/nonexistent.config"], "--kconfig /nonexistent.config: no such file"),
        (["run", "--accel", "hvf"], "invalid choice: 'hvf'"),
        (["run", "--jobs", "0"], "--jobs 0"),
        (["run", "--samples", "0"], "--samples 0"),
        (["run", "--clock", "icount", "--accel", "kvm"], "--clock icount cannot run under --accel kvm"),
        (["run", "--clock", "wallclock"], "invalid choice: 'wallclock'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args, complaint):
    result = gupvm(*args, "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path) if args[0] == "run" else gupvm(
        *args, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gupvm: error: ")
    assert complaint in lines[0]
    assert not (tmp_path / "out").exists()  # nothing started, no run directory left behind
