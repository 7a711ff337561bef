"""Kernel faults provoked with LKDTM, each classified right, on a real 6.1 x86_64 kernel.

The plan (tests/data/faults.plan.toml) names the Kconfig options it needs
(CONFIG_LKDTM and the menu it sits in, CONFIG_SOFTLOCKUP_DETECTOR): gupvm merges them after its own
fragments and verifies them like its own. That kernel is one extra build,
shared with test_shared_cache.py, which builds it side by side with the
default one.
"""

import os
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

PLAN = Path(__file__).parent / "data/faults.plan.toml"


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("faults")
    junit = workdir / "junit.xml"
    mark = uuid.uuid4().hex  # inherited by QEMU: finds this run's, not another's on a shared machine
    # The realtime clock: under icount, LKDTM's soft lockup loop (a pause instruction, a TCG exit each)
    # moves the guest's clock so slowly that the watchdog's report comes minutes of real time later.
    result = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--plan", str(PLAN), "--junit", str(junit),
                             "--clock", "realtime"],
                            cwd=workdir, capture_output=True, text=True, env=dict(os.environ, GUPVM_TEST_RUN=mark))
    root = ElementTree.parse(junit).getroot()
    suite = root.find("testsuite")
    return result, suite, {case.get("name"): case for case in suite.findall("testcase")}, mark


def test_the_run_fails_as_a_test_failure_not_an_infrastructure_one(faults):
    result, _, cases, _ = faults
    assert result.returncode == 1, result.stdout + result.stderr
    assert cases["build"].find("failure") is None and cases["boot"].find("failure") is None


@pytest.mark.parametrize("step, status, said", [
    ("lkdtm_warning", "failed", "WARNING: CPU: "),
    ("lkdtm_refcount_saturated", "failed", "refcount_t: saturated; leaking memory"),
    ("lkdtm_softlockup", "failed", "BUG: soft lockup"),
    ("lkdtm_bug", "crashed", "kernel BUG at drivers/misc/lkdtm/bugs.c"),
    ("lkdtm_exception", "crashed", "BUG: kernel NULL pointer dereference"),
    ("lkdtm_panic", "crashed", "Kernel panic - not syncing: dumptest"),
    ("lkdtm_hung_task", "timeout", "no result after 10 s"),
])
def test_each_fault_ends_its_step_with_the_right_status_and_the_splat(faults, step, status, said):
    _, _, cases, _ = faults
    failure = cases[step].find("failure")
    assert failure is not None and failure.get("type") == status, (step, failure.attrib if failure else None)
    assert said in failure.get("message")
    if status == "crashed":  # the splat's title leads the message
        assert failure.get("message").split(": ", 1)[1].startswith(said.split(" at ")[0])


def test_the_steps_after_each_crash_pass_in_fresh_boots(faults):
    _, suite, cases, _ = faults
    for step in ("pin_basic_first", "pin_fast_after_bug", "pin_basic_after_panic", "pin_longterm_last"):
        assert cases[step].find("failure") is None, step
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    # after the BUG, the Oops, the panic, the soft lockup and the hung task
    assert properties["boots"] == "6"


def test_no_qemu_survives(faults):
    mark = faults[3].encode()
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark in (entry / "environ").read_bytes():
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                assert state == "Z", (entry / "cmdline").read_bytes()
        except OSError:
            continue
