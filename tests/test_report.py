import json
import xml.etree.ElementTree as ElementTree

import pytest

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.report import StageResult, SuiteResult, junit_xml, results_json, summary


@pytest.fixture
def suites(recovery_61):
    steps = tuple(check_step(step, capture, all_arches()["x86_64"]) for step, capture in recovery_61.values())
    recovery = SuiteResult("x86_64 linux-6.1.176", {"arch": "x86_64", "kernel_release": "6.1.176"},
                           StageResult("passed", "cached", 1.0), StageResult("passed", "3 boot(s)", 20.0), steps)
    broken = SuiteResult("i386 linux-6.1.176", {"arch": "i386"},
                         StageResult("failed", "kernel build (i386) failed", 3.0, "error: boom"),
                         StageResult("skipped", "the build failed"), ())
    return [recovery, broken]


def test_one_testsuite_per_suite_with_its_properties(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    first, second = root.findall("testsuite")
    assert first.get("name") == "x86_64 linux-6.1.176"
    assert {p.get("name"): p.get("value") for p in first.findall("properties/property")} == {
        "arch": "x86_64", "kernel_release": "6.1.176"}
    names = [case.get("name") for case in first.findall("testcase")]
    assert names[:2] == ["build", "boot"] and len(names) == 2 + 6
    build = second.find("testcase[@name='build']")
    assert build.find("failure").get("message") == "kernel build (i386) failed"
    assert second.find("testcase[@name='boot']/skipped") is not None


def test_failures_say_expected_and_seen_and_keep_the_console(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    cases = {case.get("name"): case for case in root.find("testsuite").findall("testcase")}
    crash = cases["sysrq_crash"].find("failure")
    assert crash.get("type") == "crashed" and "Kernel panic - not syncing" in crash.get("message")
    assert cases["hang"].find("failure").get("type") == "timeout"
    warn = cases["pin_with_foll_get"]
    assert "expected no kernel splat" in warn.find("failure").get("message")
    assert "WARNING: CPU" in warn.findtext("system-out")
    figures = {p.get("name"): p.get("value") for p in cases["pin_fast_after_crash"].findall("properties/property")}
    assert figures["acquired_delta"] == figures["released_delta"] == "32768"
    assert cases["pin_fast_after_crash"].find("failure") is None


def test_results_json_has_everything_collected(suites):
    data = json.loads(results_json(suites))
    step = data[0]["steps"][0]
    assert step["name"] == "pin_basic_before" and step["status"] == "passed"
    assert step["collected"]["counters_after"]["nr_foll_pin_acquired"] > 0
    assert data[1]["build"]["detail"] == "error: boom"


def test_summary_is_one_line_per_step(suites):
    lines = summary(suites).splitlines()
    assert len(lines) == 2 + 6 + 1
    assert lines[-1] == "5 passed, 4 failed, 1 skipped"
    assert any(line.split()[0] == "CRASH" for line in lines)
