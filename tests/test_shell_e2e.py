"""gupvm shell on a real kernel: a command in, its answer out; poweroff or Ctrl-] ends it, no QEMU left."""

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

pytestmark = pytest.mark.e2e

PLAN = str(Path(__file__).parent / "data/two-steps.plan.toml")


@contextlib.contextmanager
def shell(tmp_path: Path, *args: str) -> Iterator[pexpect.spawn]:
    """The shell at its prompt; on leaving, it must have ended with exit 0 and no QEMU of it left running."""
    env = {name: value for name, value in os.environ.items() if name != "CI"} | {"TERM": "xterm"}
    child = pexpect.spawn(sys.executable, ["-m", "orchestrator", "shell", "--plan", PLAN, *args], cwd=str(tmp_path),
                          env=env, encoding="utf-8", timeout=900, dimensions=(40, 200))
    try:
        child.expect("gupvm: guest ready")
        child.expect("gupvm# ")
        yield child
        child.expect("shell ended, QEMU stopped", timeout=120)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert subprocess.run(["pgrep", "-f", "qemu-system.*gupvm.shell=1"], capture_output=True).stdout == b""


def pin_and_power_off(child: pexpect.spawn) -> None:
    child.sendline("gup_test -a -n 1 -m 1 && echo pinned-$((1+1))")
    child.expect("pinned-2", timeout=120)
    child.sendline("poweroff")


def test_a_command_in_its_answer_out_and_poweroff_ends_it(tmp_path: Path):
    with shell(tmp_path) as child:
        child.sendline("echo answer=$((6*7)); command -v gup_test; grep -c ^nr_foll_pin /proc/vmstat")
        child.expect("answer=42")
        child.expect("/gupvm/gup_test")
        child.expect("\n2\r*\n")  # QEMU's pty turns the guest's \r\n into \r\r\n
        pin_and_power_off(child)


def test_ctrl_right_bracket_ends_it(tmp_path: Path):
    with shell(tmp_path) as child:
        child.sendcontrol("]")


@pytest.mark.manual  # a cold cross build of 7.3 per arch where the cache has none
@pytest.mark.parametrize("arch, machine", [("arm64", "aarch64"), ("armv7", "armv7l"), ("armv7-lpae", "armv7l")])
def test_the_shell_on_arm_is_that_arch_and_pins(tmp_path: Path, arch, machine):
    with shell(tmp_path, "--kernel-src", "debian:7.3", "--arch", arch) as child:
        child.sendline("echo machine=$(uname -m)")
        child.expect(f"machine={machine}\r")
        pin_and_power_off(child)
