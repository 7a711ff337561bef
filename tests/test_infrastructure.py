"""Infrastructure faults: each ends the way the README's exit-code table says, and the cache survives it.

The host-tool cases need no kernel and run with the unit tests; the rest
boot or unpack for real (e2e). A kernel that never reaches gupvm's init is
in test_signals.py, next to the test that builds that kernel.
"""

import os
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

ONE_STEP_PLAN = '[[step]]\nname = "pin_basic"\nargs = ["-b"]\nexpect = "pin"\n'


def gupvm(cwd: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True,
                          env=env)


def path_without(tmp_path: Path, missing: str) -> str:
    """A PATH with every program of the real one except missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in reversed(os.environ["PATH"].split(os.pathsep)):
        if Path(directory).is_dir():
            for program in Path(directory).iterdir():
                if program.name != missing:
                    (bin_dir / program.name).unlink(missing_ok=True)
                    (bin_dir / program.name).symlink_to(program)
    return str(bin_dir)


@pytest.mark.parametrize("missing, package, command", [
    ("qemu-system-x86_64", "qemu-system-x86", "run"),
    ("gcc", "gcc", "build"),
    ("make", "make", "run"),
    ("qemu-system-aarch64", "qemu-system-arm", "run --arch arm64"),
    ("arm-linux-gnueabihf-gcc", "gcc-arm-linux-gnueabihf libc6-dev-armhf-cross", "build --arch armv7"),
])
def test_a_missing_tool_exits_3_naming_its_package_before_anything_runs(tmp_path: Path, missing, package, command):
    env = dict(os.environ, PATH=path_without(tmp_path, missing))
    result = gupvm(tmp_path, *command.split(), "--cache-dir", str(tmp_path / "cache"), env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{missing} not found on PATH" in lines[0]
    assert f"apt-get install {package}" in lines[0]
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_too_little_free_disk_exits_3_before_anything_runs(tmp_path: Path):
    env = dict(os.environ, GUPVM_MIN_FREE_GIB="1000000")  # more than any disk here has
    result = gupvm(tmp_path, "build", "--cache-dir", str(tmp_path / "cache"), env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "GiB free for the cache" in result.stderr and "free some space or give another --cache-dir" in result.stderr
    assert not (tmp_path / "cache").exists()


@pytest.fixture
def small_tmpfs(tmp_path: Path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200m", "tmpfs", str(mount_point)], check=True)
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=True)


@pytest.mark.e2e
def test_too_little_free_disk_is_found_on_a_small_tmpfs(tmp_path: Path, small_tmpfs: Path):
    result = gupvm(tmp_path, "run", "--cache-dir", str(small_tmpfs / "cache"))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "only 0.2 GiB free for the cache" in result.stderr
    assert not (small_tmpfs / "cache").exists()


@pytest.mark.e2e
def test_a_disk_that_fills_while_unpacking_exits_3_and_leaves_no_tree(tmp_path: Path, small_tmpfs: Path):
    env = dict(os.environ, GUPVM_MIN_FREE_GIB="0.1")  # past the up-front check, to fill while unpacking
    cache = small_tmpfs / "cache"
    result = gupvm(tmp_path, "build", "--cache-dir", str(cache), env=env)
    assert result.returncode == 3, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the disk is full (No space left on device)" in lines[0]
    assert [path.name for path in (cache / "src").iterdir() if not path.name.endswith(".lock")] == []
    assert shutil.disk_usage(small_tmpfs).used < 1 << 20  # the half-unpacked tree is gone


def processes_with(mark: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.e2e
def test_qemu_killed_from_outside_crashes_the_step_and_the_rest_run_in_a_fresh_boot(tmp_path: Path):
    plan = tmp_path / "kill.toml"
    plan.write_text(ONE_STEP_PLAN + '[[step]]\nname = "long_wait"\nprogram = "sh"\n'
                    'args = ["-c", "mkfifo /tmp/never && read line < /tmp/never"]\n'
                    'expect = "get"\ntimeout = 200\n'
                    '[[step]]\nname = "pin_fast_after"\nargs = ["-a"]\nexpect = "pin"\n')
    mark = uuid.uuid4().hex
    junit = tmp_path / "junit.xml"
    gupvm_run = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--plan", str(plan), "--junit", str(junit)],
        cwd=tmp_path, env=dict(os.environ, GUPVM_TEST_RUN=mark), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        logs = list((tmp_path / "out").glob("*/console-*-x86_64-*.log"))
        if logs and "@@gupvm step-begin 2 long_wait" in logs[0].read_text(errors="replace"):
            break
        assert gupvm_run.poll() is None
        time.sleep(0.5)
    qemu = [pid for pid in processes_with(mark)
            if b"qemu-system" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]]
    assert len(qemu) == 1
    os.kill(qemu[0], 9)
    output, _ = gupvm_run.communicate(timeout=600)
    assert gupvm_run.returncode == 1, output
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    failure = cases["long_wait"].find("failure")
    assert failure.get("type") == "crashed" and failure.get("message").endswith("QEMU exited in the middle of the step")
    assert cases["pin_basic"].find("failure") is None and cases["pin_fast_after"].find("failure") is None
    assert {p.get("name"): p.get("value") for p in suite.findall("properties/property")}["boots"] == "2"
    assert processes_with(mark) == []
