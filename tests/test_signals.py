"""SIGINT and SIGTERM sent to a real `gupvm run` in its config, build and boot stages.

Each time: make and QEMU are gone within 5 s, gupvm exits 128 + the signal,
the run directory holds a JUnit file and a results.json that parse and mark
the interrupted stage, and the cache is left usable: a run right after
works and reuses what was finished.

The processes a run started are found by an environment variable only that
run's gupvm has: make and QEMU inherit it, and run in process groups of
their own, so nothing else can tell them apart from another run's.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from orchestrator.layout import Cache

pytestmark = pytest.mark.e2e

CACHE = Path(os.environ.get("GUPVM_CACHE", Path.home() / ".cache/gupvm"))
ONE_STEP_PLAN = '[[step]]\nname = "pin_basic"\nargs = ["-b"]\nexpect = "pin"\n'


def processes_with(mark: str) -> list[str]:
    """Command lines of the live processes whose environment holds mark."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or entry.name == str(os.getpid()):
            continue
        try:
            if mark.encode() in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


class Run:
    def __init__(self, tmp_path: Path, *args: str, command: str = "run"):
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.mark = f"GUPVM_TEST_RUN={uuid.uuid4().hex}"
        self.out = tmp_path / "out"
        env = dict(os.environ, **dict([self.mark.split("=")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", command, "--out", str(self.out), *args],
            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )

    @property
    def run_dir(self) -> Path | None:
        dirs = list(self.out.iterdir()) if self.out.is_dir() else []
        return dirs[0] if dirs else None

    def wait_for(self, pattern: str, text: str, seconds: float = 900) -> None:
        """Until a file of the run directory matching pattern (its names carry kernel, arch and plan) says text."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.stdout.read()
            paths = list(self.run_dir.glob(pattern)) if self.run_dir else []
            if any(text in path.read_text(errors="replace") for path in paths):
                return
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} in {pattern} after {seconds} s")

    def interrupt(self, signum: int) -> tuple[int, str]:
        """Send signum; children must be gone within 5 s, gupvm soon after."""
        assert processes_with(self.mark.split("=")[1])  # gupvm and what it started, before
        self.process.send_signal(signum)
        sent = time.monotonic()
        while time.monotonic() - sent < 5:
            left = [line for line in processes_with(self.mark.split("=")[1]) if "orchestrator" not in line]
            if not left:
                break
            time.sleep(0.1)
        assert not left, left
        output, _ = self.process.communicate(timeout=30)
        assert processes_with(self.mark.split("=")[1]) == []
        return self.process.returncode, output

    def reports(self) -> tuple[list, ElementTree.Element]:
        results = json.loads((self.run_dir / "results.json").read_text())
        return results, ElementTree.parse(self.run_dir / "junit.xml").getroot()


def build_dir_of(*additions: str) -> Path:
    """The cache's build directory for the default tree and arch with these --kconfig-add options."""
    from orchestrator import build, source
    from orchestrator.arches import DEFAULT_ARCH, all_arches
    from orchestrator.config import ConfigRequest

    arch = all_arches()[DEFAULT_ARCH]
    request = ConfigRequest.for_arch(arch, [], list(additions))
    return build.build_dir_for(CACHE, source.resolve(None, CACHE), arch, request.key())


def forget_kernel(build_dir: Path, *additions: str) -> None:
    """Remove a build directory and every finished kernel kept of a config with these options."""
    for kept in (entry / "config" for entry in Cache(CACHE).kept_kernels("x86_64")):
        if all(option in kept.read_text().splitlines() for option in additions):
            shutil.rmtree(kept.parent)
    shutil.rmtree(build_dir, ignore_errors=True)


def gupvm(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path, capture_output=True,
                          text=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_config_stage(tmp_path: Path, signum: int):
    # A config of its own, never merged before, so the config stage really runs make.
    unique = f'CONFIG_LOCALVERSION="-sig{uuid.uuid4().hex[:8]}"'
    run = Run(tmp_path, "--kconfig-add", unique)
    run.wait_for("build-*-x86_64.log", "tinyconfig")
    code, output = run.interrupt(signum)
    assert code == 128 + signum, output
    results, junit = run.reports()
    assert results[0]["build"]["status"] == "interrupted"
    assert results[0]["build"]["message"] == f"{signal.Signals(signum).name} during the config"
    assert junit.find("testsuite/testcase[@name='build']/failure").get("type") == "build-interrupted"
    assert not list((CACHE / "configs").glob("*.partial"))
    shutil.rmtree(build_dir_of(unique), ignore_errors=True)  # this test's own, never used again


# A kernel whose built-in command line sends it to an init that is not there:
# it boots to a shell instead of gupvm's init. The build-stage test builds it
# from nothing (so there is a build to interrupt) and the test after it boots it.
NO_INIT = ["CONFIG_CMDLINE_BOOL=y", 'CONFIG_CMDLINE="rdinit=/nonexistent"']
NO_INIT_OPTIONS = [option for addition in NO_INIT for option in ("--kconfig-add", addition)]


def test_a_sigterm_in_the_build_stage_then_a_rerun_reuses_the_objects(tmp_path: Path):
    build_dir = build_dir_of(*NO_INIT)
    forget_kernel(build_dir, *NO_INIT)  # this test's own config: a build from nothing
    run = Run(tmp_path / "first", *NO_INIT_OPTIONS, command="build")
    run.wait_for("build-*-x86_64.log", "  CC ")
    time.sleep(10)  # well into the build
    code, output = run.interrupt(signal.SIGTERM)
    assert code == 143, output
    results, junit = run.reports()
    assert results[0]["build"]["status"] == "interrupted"
    assert results[0]["build"]["message"] == "SIGTERM during the build"
    build_log = next(run.run_dir.glob("build-*-x86_64.log")).read_text()
    first_compiled = next(line for line in build_log.splitlines() if line.startswith("  CC "))
    assert not (build_dir / "gupvm-stamp.json").exists()  # no half-built kernel taken for a finished one
    rerun = Run(tmp_path / "second", *NO_INIT_OPTIONS, command="build")
    output, _ = rerun.process.communicate(timeout=1800)
    assert rerun.process.returncode == 0, output
    rebuilt = next(rerun.run_dir.glob("build-*-x86_64.log")).read_text()
    assert first_compiled not in rebuilt.splitlines()  # what finished was not compiled again
    assert (build_dir / "gupvm-stamp.json").exists()


def test_a_kernel_that_does_not_reach_init_exits_3_with_the_console_tail(tmp_path: Path):
    """An infrastructure fault, here for the kernel the test above built."""
    result = gupvm(tmp_path, "run", "--plan", write_plan(tmp_path), "--boot-timeout", "30", *NO_INIT_OPTIONS)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "boot failed: no init after 30 s; console: " in result.stdout
    assert "Run /bin/sh as init process" in result.stdout  # the console's tail says why
    results = json.loads(next((tmp_path / "out").iterdir()).joinpath("results.json").read_text())
    assert results[0]["boot"]["status"] == "failed" and results[0]["build"]["status"] == "passed"


def write_plan(tmp_path: Path) -> str:
    plan = tmp_path / "one-step.toml"
    plan.write_text(ONE_STEP_PLAN)
    return str(plan)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_in_the_boot_stage_keeps_the_finished_steps(tmp_path: Path, signum: int):
    run = Run(tmp_path, "--plan", "smoke")
    run.wait_for("console-*-x86_64-*.log", "@@gupvm step-begin 2 ")
    code, output = run.interrupt(signum)
    assert code == 128 + signum, output
    results, junit = run.reports()
    name = signal.Signals(signum).name
    suite = results[0]
    assert suite["build"]["status"] == "passed"
    assert suite["boot"]["status"] == "interrupted"
    assert suite["boot"]["message"].startswith(f"{name} during step 2 ")
    assert suite["steps"][0]["status"] == "passed"
    # Not run because of the signal: "interrupted" (KCIDB's MISS), a skipped testcase in JUnit.
    assert {step["status"] for step in suite["steps"][1:]} == {"interrupted"}
    assert junit.find(f"testsuite/testcase[@name='{suite['steps'][1]['name']}']/skipped") is not None
    assert junit.find("testsuite/testcase[@name='boot']/failure").get("type") == "boot-interrupted"
    assert f"===== gupvm interrupted by {name}" in next(run.run_dir.glob("console-*-x86_64-*.log")).read_text()
    rerun = gupvm(tmp_path, "run", "--plan", write_plan(tmp_path), "--out", str(tmp_path / "again"))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    again = json.loads(next((tmp_path / "again").iterdir()).joinpath("results.json").read_text())
    assert again[0]["properties"]["kernel_build"] == "cached"
