import dataclasses
import json
import re
import xml.etree.ElementTree as ElementTree

import pytest

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.report import junit_xml, results_json, summary
from orchestrator.results import StageResult, SuiteResult


@pytest.fixture
def suites(recovery_61):
    steps = tuple(check_step(step, capture, all_arches()["x86_64"]) for step, capture in recovery_61.values())
    recovery = SuiteResult("gupvm.debian-6_1.x86_64.recovery", {"arch": "x86_64", "kernel_release": "6.1.176"},
                           StageResult("passed", "cached", 1.0), StageResult("passed", "3 boot(s)", 20.0), steps)
    broken = SuiteResult("gupvm.debian-6_1.i386.recovery", {"arch": "i386"},
                         StageResult("failed", "kernel build (i386) failed", 3.0, "error: boom"),
                         StageResult("skipped", "the build failed"), ())
    return [recovery, broken]


def test_one_testsuite_per_suite_with_its_properties(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    first, second = root.findall("testsuite")
    assert first.get("name") == "gupvm.debian-6_1.x86_64.recovery"
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


def test_suite_time_is_its_wall_time_and_case_times_add_up_to_it(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    first = root.find("testsuite")
    assert float(first.get("time")) == pytest.approx(1.0 + 20.0)  # the build and the boots, steps inside the boots
    cases = first.findall("testcase")
    assert sum(float(case.get("time")) for case in cases) == pytest.approx(21.0, abs=0.01)
    steps = sum(step.seconds for step in suites[0].steps)
    assert float(first.find("testcase[@name='boot']").get("time")) == pytest.approx(20.0 - steps, abs=0.01)


def test_classnames_are_the_suite_and_group_without_splitting_a_version(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    for suite in root.findall("testsuite"):
        assert {case.get("classname") for case in suite.findall("testcase")} == {suite.get("name")}
        assert not re.search(r"\d\.\d", suite.get("name"))


def test_testcase_names_are_unique_within_a_suite(suites):
    step = suites[0].steps[0]
    clash = dataclasses.replace(step, step=dataclasses.replace(step.step, name="boot"))
    suite = dataclasses.replace(suites[0], steps=(*suites[0].steps, clash, clash))
    cases = ElementTree.fromstring(junit_xml([suite])).find("testsuite").findall("testcase")
    names = [case.get("name") for case in cases]
    assert len(names) == len(set(names))
    assert names[-2:] == ["boot (2)", "boot (3)"]
    assert cases[-1].find("properties") is not None  # the renamed step keeps its figures
