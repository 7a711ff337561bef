"""The JUnit file keeps to junit-10.xsd, and hostile console text cannot break it or results.json.

The rules below are those of junit-10.xsd as the Jenkins xUnit plugin ships
it (jenkinsci/xunit-plugin, src/main/resources/org/jenkinsci/plugins/xunit/
types/model/xsd/junit-10.xsd): which element may stand inside which, which
attributes each may carry and which it must, and the SUREFIRE_TIME pattern
of a suite's time. The one deviation gupvm allows itself is a <properties>
element inside a testcase (each step's figures).
"""

import dataclasses
import json
import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.layout import RunDir
from orchestrator.report import clean, junit_xml, results_json, write_reports
from orchestrator.results import StageResult, SuiteResult

_RESULT = ("type", "message")
CHILDREN = {
    "testsuites": {"testsuite"},
    "testsuite": {"testsuite", "properties", "testcase", "system-out", "system-err"},
    "testcase": {"skipped", "error", "failure", "rerunFailure", "rerunError", "flakyFailure", "flakyError",
                 "system-out", "system-err"},
    "properties": {"property"},
    "property": set(), "failure": set(), "error": set(), "skipped": set(), "system-out": set(), "system-err": set(),
}
ATTRIBUTES = {
    "testsuites": {"name", "time", "tests", "failures", "errors"},
    "testsuite": {"name", "tests", "failures", "errors", "group", "time", "skipped", "timestamp", "hostname", "id",
                  "package", "file", "log", "url"},
    "testcase": {"name", "time", "classname", "group"},
    "property": {"name", "value"},
    "failure": set(_RESULT), "error": set(_RESULT), "skipped": set(_RESULT),
    "properties": set(), "system-out": set(), "system-err": set(),
}
REQUIRED = {"testsuite": {"name", "tests", "failures", "errors"}, "testcase": {"name"}, "property": {"name", "value"}}
SUREFIRE_TIME = re.compile(r"(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]*)?")
ALLOWED_DEVIATION = ("testcase", "properties")


def schema_violations(root: ElementTree.Element) -> list[str]:
    problems = []
    if root.tag != "testsuites":
        problems.append(f"root is <{root.tag}>")

    def visit(element: ElementTree.Element) -> None:
        tag = element.tag
        for child in element:
            if child.tag not in CHILDREN.get(tag, set()) and (tag, child.tag) != ALLOWED_DEVIATION:
                problems.append(f"<{child.tag}> inside <{tag}>")
            visit(child)
        for attribute in set(element.attrib) - ATTRIBUTES.get(tag, set()):
            problems.append(f"<{tag}> has attribute {attribute}")
        for attribute in REQUIRED.get(tag, set()) - set(element.attrib):
            problems.append(f"<{tag}> lacks attribute {attribute}")
        if tag in ("testsuites", "testsuite") and "time" in element.attrib:
            if not SUREFIRE_TIME.fullmatch(element.get("time")):
                problems.append(f"<{tag}> time {element.get('time')!r} is not SUREFIRE_TIME")

    visit(root)
    return problems


# What a crashing kernel prints: ANSI colours, a NUL, a bell, backspaces, form
# feed, bytes that are not UTF-8 (pexpect reads them as U+FFFD), and the lone
# surrogates a surrogateescape decode makes of them.
HOSTILE = ("\x1b[1;31mBUG:\x1b[0m bad page\x00 state\x07\x08\x08\x0c here "
           + b"\xff\xfe\xc3(".decode("utf-8", "replace")
           + b"\xff\x80".decode("utf-8", "surrogateescape") + "\x1b]0;title\x07 \ufffe end\x7f\x1b")


@pytest.fixture
def suites(recovery_61):
    steps = [check_step(step, capture, all_arches()["x86_64"]) for step, capture in recovery_61.values()]
    steps[1] = dataclasses.replace(steps[1], console=steps[1].console + HOSTILE, message=HOSTILE)
    steps[2] = dataclasses.replace(steps[2], figures={**steps[2].figures, "note": HOSTILE})
    suite = SuiteResult("x86_64 linux-6.1.176", {"arch": "x86_64", "kernel_release": HOSTILE},
                        StageResult("passed", "cached", 1.0), StageResult("passed", "3 boot(s)", 20.0), tuple(steps))
    broken = SuiteResult("i386 linux-6.1.176", {"arch": "i386"},
                         StageResult("failed", "kernel build (i386) failed", 3.0, "error: boom" + HOSTILE),
                         StageResult("skipped", "the build failed"), ())
    tiny = SuiteResult("i386-pae linux-6.1.176", {}, StageResult("passed", "cached", 1e-06),
                       StageResult("interrupted", "SIGTERM during the boot", 2e-7), ())
    return [suite, broken, tiny]


def test_junit_keeps_to_junit_10_xsd_apart_from_testcase_properties(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    assert schema_violations(root) == []
    assert root.find("testsuite/testcase/properties") is not None  # the deviation is really there


def test_the_schema_check_catches_what_junit_xml_writes_by_itself():
    raw = ElementTree.fromstring('<testsuites disabled="0"><testsuite name="s" tests="1" failures="0" errors="0" '
                                 'time="1e-06"><testcase name="c"><properties/><bogus/></testcase></testsuite>'
                                 '</testsuites>')
    assert schema_violations(raw) == ["<bogus> inside <testcase>", "<testsuite> time '1e-06' is not SUREFIRE_TIME",
                                      "<testsuites> has attribute disabled"]


def test_hostile_console_text_gives_reports_that_parse(suites, tmp_path: Path):
    write_reports(suites, RunDir(tmp_path))
    for path in (RunDir(tmp_path).junit,):
        root = ElementTree.parse(path).getroot()  # a strict XML 1.0 parser, from the bytes on disk
        out = root.find("testsuite/testcase[@name='sysrq_crash']/system-out").text
        assert "BUG: bad page^@ state^G^H^H^L here \ufffd\ufffd\ufffd(" in out
        assert "\x1b" not in out and "[1;31m" not in out and "title" not in out
    data = json.loads((tmp_path / "results.json").read_bytes())
    message = data[0]["steps"][1]["message"]
    assert message.startswith("BUG: bad page^@ state")
    message.encode("utf-8")  # no lone surrogate survives: strict JSON consumers reject them
    assert data[0]["properties"]["kernel_release"] == clean(HOSTILE)
    assert json.loads(results_json(suites)) == data


def test_an_interrupted_stage_is_a_failure_of_its_own_type(suites):
    root = ElementTree.fromstring(junit_xml(suites))
    boot = root.find("testsuite[@name='i386-pae linux-6.1.176']/testcase[@name='boot']/failure")
    assert boot.get("type") == "boot-interrupted" and boot.get("message") == "SIGTERM during the boot"
