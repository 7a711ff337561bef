"""The run as KCIDB JSON, validated with kcidb-io's own copy of the pinned schema."""

import dataclasses
import json

import pytest
from kcidb_io import schema

from orchestrator import kcidb
from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.plan import Step
from orchestrator.report import results_json
from orchestrator.results import StageResult, Status, StepResult, SuiteResult

PINNED = schema.V5_3


def records(steps_by_name, plan="smoke", arch="x86_64", identity="debian:linux-source-6.1 6.1.192-2"):
    steps = tuple(check_step(step, capture, all_arches()[arch]) for step, capture in steps_by_name.values())
    suite = SuiteResult(f"gupvm.debian-6_1.{arch}.{plan}",
                        {"arch": arch, "kernel_source": identity, "kernel_version": "6.1.192",
                         "config_hash": "0123456789abcdef", "kernel_release": "6.1.192", "accel": "tcg",
                         "plan": plan, "bits": "64" if arch == "x86_64" else "32"},
                        StageResult("passed", "", 150.0), StageResult("passed", "1 boot(s)", 30.0), steps)
    return json.loads(results_json([suite]))


def test_the_pinned_version_is_kcidb_ios_v5_3():
    assert kcidb.SCHEMA_VERSION == f"{PINNED.major}.{PINNED.minor}" == "5.3"


def test_a_smoke_run_is_valid_kcidb_with_dotted_test_paths(smoke_61):
    data = kcidb.kcidb_json(records(smoke_61))
    PINNED.validate(data)
    assert data["version"] == {"major": 5, "minor": 3}
    (checkout,), (build,) = data["checkouts"], data["builds"]
    assert checkout["comment"] == "debian:linux-source-6.1 6.1.192-2" and checkout["id"].startswith("gupvm:")
    assert build["checkout_id"] == checkout["id"] and build["status"] == "PASS"
    paths = {test["path"]: test for test in data["tests"]}
    assert "gupvm.x86_64.smoke.pin_fast_benchmark" in paths and "gupvm.x86_64.smoke.boot" in paths
    assert paths["gupvm.x86_64.smoke.pin_fast_benchmark"]["status"] == "PASS"
    assert paths["gupvm.x86_64.smoke.pin_fast_benchmark"]["misc"]["acquired_delta"] == "32768"
    assert len({test["id"] for test in data["tests"]}) == len(data["tests"])


def test_failures_crashes_and_a_git_tree_validate(recovery_61):
    data = kcidb.kcidb_json(records(recovery_61, plan="recovery", arch="i386-pae",
                                    identity="git:/src/linux@0123456789ab+dirty-fedcba9876543210"))
    PINNED.validate(data)
    statuses = {test["path"].rsplit(".", 1)[1]: test["status"] for test in data["tests"]}
    assert statuses["sysrq_crash"] == statuses["hang"] == statuses["pin_with_foll_get"] == "FAIL"
    assert statuses["pin_fast_after_crash"] == "PASS"
    assert data["checkouts"][0]["git_commit_name"] == "0123456789ab"
    assert data["builds"][0]["architecture"] == "i386"
    crash = next(test for test in data["tests"] if test["path"].endswith(".sysrq_crash"))
    assert "Kernel panic" in crash["log_excerpt"] and len(crash["log_excerpt"]) <= kcidb.EXCERPT_CHARS


def test_a_failed_build_is_a_failed_build_with_no_tests():
    record = {"name": "gupvm.x.x86_64.smoke", "properties": {"arch": "x86_64", "kernel_source": "tree:/t#ab",
                                                            "config_hash": "ab", "bits": "64"},
              "build": {"status": "failed", "message": "kernel build failed", "seconds": 3.0,
                        "detail": "error: boom\0"},
              "boot": {"status": "skipped", "message": "the build failed", "seconds": 0.0, "detail": ""},
              "steps": []}
    data = kcidb.kcidb_json([record])
    PINNED.validate(data)
    assert data["builds"][0]["status"] == "FAIL" and data["tests"] == []


def test_gup_longterms_ktap_results_are_tests_under_its_step(tmp_path_factory):
    from conftest import replayed
    steps = replayed("6.12-x86_64-hugepage.console.log", "hugepage.plan.toml", tmp_path_factory)
    data = kcidb.kcidb_json(records(steps, plan="hugepage"))
    PINNED.validate(data)
    ktap = [test for test in data["tests"] if test["path"].startswith("gupvm.x86_64.hugepage.gup_longterm.")]
    assert len(ktap) > 10 and all(test["status"] in ("PASS", "SKIP") for test in ktap)


def test_the_schema_check_bites():
    with pytest.raises(Exception, match="does not match"):
        PINNED.validate({"version": {"major": 5, "minor": 3},
                         "tests": [{"id": "gupvm:x", "build_id": "gupvm:b", "origin": "gupvm", "path": "has space"}]})


def _suite(build: StageResult, boot: StageResult, steps=()) -> list[dict]:
    suite = SuiteResult("gupvm.debian-6_1.x86_64.smoke",
                        {"arch": "x86_64", "kernel_source": "debian:linux-source-6.1 6.1.192-2", "config_hash": "ab",
                         "plan": "smoke", "bits": "64"}, build, boot, tuple(steps))
    return json.loads(results_json([suite]))


@pytest.mark.parametrize("build, boot, build_status, boot_status", [
    (Status.PASSED, Status.PASSED, "PASS", "PASS"),
    (Status.FAILED, Status.SKIPPED, "FAIL", None),
    (Status.INTERRUPTED, Status.SKIPPED, "MISS", None),  # a cancelled CI job is not green
    (Status.PASSED, Status.FAILED, "PASS", "ERROR"),
    (Status.PASSED, Status.INTERRUPTED, "PASS", "MISS"),
])
def test_every_stage_status_as_kcidb_v5_defines_it(build, boot, build_status, boot_status):
    data = kcidb.kcidb_json(_suite(StageResult(build, "m", 1.0, "d"), StageResult(boot, "m", 1.0, "d")))
    PINNED.validate(data)
    assert data["builds"][0]["status"] == build_status
    assert [test["status"] for test in data["tests"] if test["path"].endswith(".boot")] == \
        ([boot_status] if boot_status else [])


@pytest.mark.parametrize("status, kcidb_status", [
    (Status.PASSED, "PASS"), (Status.FAILED, "FAIL"), (Status.CRASHED, "FAIL"), (Status.TIMEOUT, "FAIL"),
    (Status.SKIPPED, "SKIP"), (Status.INTERRUPTED, "MISS"),
])
def test_every_step_status_as_kcidb_v5_defines_it(status, kcidb_status):
    step = StepResult(Step("pin_basic", ("-b",), "pin", 60.0), status, "m", 1.0, "console")
    data = kcidb.kcidb_json(_suite(StageResult(Status.PASSED), StageResult(Status.PASSED), [step]))
    PINNED.validate(data)
    assert next(test for test in data["tests"] if test["path"].endswith(".pin_basic"))["status"] == kcidb_status


def test_a_ktap_not_ok_is_a_failed_kcidb_test_under_its_step(tmp_path_factory):
    from conftest import replayed
    steps = replayed("6.12-x86_64-hugepage.console.log", "hugepage.plan.toml", tmp_path_factory)
    step, capture = steps["gup_longterm"]
    text = capture.text.replace("ok 1 ", "not ok 1 ", 1)
    result = check_step(step, dataclasses.replace(capture, text=text), all_arches()["x86_64"])
    data = kcidb.kcidb_json(_suite(StageResult(Status.PASSED), StageResult(Status.PASSED), [result]))
    PINNED.validate(data)
    by_path = {test["path"]: test["status"] for test in data["tests"]}
    assert by_path["gupvm.x86_64.smoke.gup_longterm"] == "FAIL"
    assert [status for path, status in by_path.items() if path.startswith("gupvm.x86_64.smoke.gup_longterm.1_")] == \
        ["FAIL"]
