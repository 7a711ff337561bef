"""Reports: JUnit XML for CI servers, results.json with everything, a terminal summary."""

import dataclasses
import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass

from junit_xml import TestCase, TestSuite, to_xml_report_string

from orchestrator.layout import RunDir
from orchestrator.parse import CaseStatus
from orchestrator.paths import write_atomically
from orchestrator.results import StageResult, Status, StepResult, SuiteResult
from orchestrator.samples import timing_samples

CONSOLE_EXCERPT_LINES = 400
CONSOLE_EXCERPT_CHARS = 64 * 1024
# What the strict JUnit schema (junit-10.xsd, which the Jenkins xUnit plugin
# checks reports with) does not allow and junit-xml writes.
_NOT_IN_SCHEMA = {"testsuites": ("disabled",), "testsuite": ("disabled",)}
_ANSI_ESCAPE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|[@-Z\\-_])")
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    """Text every XML and JSON consumer takes: ANSI escapes dropped, other control characters as ^X.

    A crashing kernel prints anything; one stray byte would make the whole report unreadable.
    """
    text = _ANSI_ESCAPE.sub("", text)
    return _NOT_XML_CHAR.sub(lambda match: _caret(match.group()), text)


def _caret(char: str) -> str:
    return f"^{chr(ord(char) + 64)}" if ord(char) < 0x20 else "\ufffd"


def _cleaned(value):
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(key)): _cleaned(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_cleaned(item) for item in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value


def _excerpt(text: str) -> str:
    lines = clean(text.replace("\r", "")).split("\n")  # cleaned first: splitlines() also splits at \f
    if len(lines) > CONSOLE_EXCERPT_LINES:
        lines = [f"[... {len(lines) - CONSOLE_EXCERPT_LINES} earlier lines in the console log]"] + lines[
            -CONSOLE_EXCERPT_LINES:
        ]
    excerpt = "\n".join(lines)
    if len(excerpt) > CONSOLE_EXCERPT_CHARS:
        excerpt = "[... earlier output in the console log]\n" + excerpt[-CONSOLE_EXCERPT_CHARS:]
    return clean(excerpt)


def _stage_case(suite: SuiteResult, name: str, stage: StageResult, seconds: float) -> TestCase:
    case = TestCase(name, classname=clean(suite.name), elapsed_sec=seconds,
                    stdout=_excerpt(stage.detail) if stage.detail else None)
    if stage.status in (Status.FAILED, Status.INTERRUPTED):
        case.add_failure_info(message=clean(stage.message), failure_type=f"{name}-{stage.status}")
    elif stage.status == Status.SKIPPED:
        case.add_skipped_info(message=clean(stage.message))
    return case


def _step_case(suite: SuiteResult, result: StepResult) -> TestCase:
    case = TestCase(result.step.name, classname=clean(suite.name), elapsed_sec=result.seconds,
                    stdout=_excerpt(result.console))
    if not result.status.ran or result.status == Status.KNOWN_FAILURE:  # JUnit has no such status: pytest's xfail
        case.add_skipped_info(message=clean(result.message))
    elif result.status != Status.PASSED:
        case.add_failure_info(message=clean(result.message), failure_type=result.status)
    return case


def _ktap_cases(suite: SuiteResult, result: StepResult) -> list[TestCase]:
    """A KTAP program's results (gup_longterm's), one testcase each."""
    if not (result.step.ktap_cases and result.output):
        return []
    cases = []
    for ktap in result.output.ktap:
        label = f"{ktap.title} ({ktap.description})" if ktap.title else ktap.description
        case = TestCase(clean(f"{result.step.name}: {ktap.number} {label}"), classname=clean(suite.name))
        if ktap.known_among(result.known_subjects):
            case.add_skipped_info(message=clean(f"known failure: {', '.join(result.known)}"))
        elif ktap.status == CaseStatus.SKIPPED:
            case.add_skipped_info(message=clean(ktap.reason or "skipped"))
        elif ktap.status == CaseStatus.EXPECTED_FAILURE:  # JUnit has no such status; pytest writes xfail so too
            said = ktap.reason or ktap.description
            case.add_skipped_info(message=clean(f"expected failure ({ktap.directive}): {said}"))
        elif ktap.status.failing:
            case.add_failure_info(message=clean(f"{'ok' if ktap.ok else 'not ok'} {ktap.number} {ktap.description}"
                                                + (f" # {ktap.directive}" if ktap.directive else "")),
                                  failure_type="ktap")
        cases.append(case)
    return cases


def _cases(suite: SuiteResult) -> list[tuple[TestCase, dict[str, str]]]:
    """The suite's testcases with their figures. Times add up to the suite's wall time: the boot's own
    case holds what the boots took beyond the steps, which have cases of their own. Names are unique
    (CI servers keep only the first of two equal names)."""
    boot_only = max(suite.boot.seconds - sum(step.seconds for step in suite.steps), 0.0)
    cases = [(_stage_case(suite, "build", suite.build, suite.build.seconds), {}),
             (_stage_case(suite, "boot", suite.boot, boot_only), {})]
    for step in suite.steps:
        cases += [(_step_case(suite, step), step.figures)] + [(case, {}) for case in _ktap_cases(suite, step)]
    seen: dict[str, int] = {}
    for case, _ in cases:
        seen[case.name] = seen.get(case.name, 0) + 1
        if seen[case.name] > 1:
            case.name = f"{case.name} ({seen[case.name]})"
    return cases


def junit_xml(suites: list[SuiteResult]) -> str:
    """JUnit XML kept to junit-10.xsd: a testsuite per suite, a testcase per stage, step and KTAP result."""
    cases = [_cases(suite) for suite in suites]
    junit_suites = [
        TestSuite(clean(suite.name), [case for case, _ in suite_cases], properties=_cleaned(suite.properties))
        for suite, suite_cases in zip(suites, cases, strict=True)
    ]
    return _to_schema(to_xml_report_string(junit_suites, encoding="utf-8"),
                      [[figures for _, figures in suite_cases] for suite_cases in cases])


def _to_schema(xml_text: str, figures: list[list[dict[str, str]]]) -> str:
    """junit-xml's output, kept to junit-10.xsd, plus each step's figures as <properties> of its testcase
    (as pytest's record_property writes them: the one place gupvm's JUnit goes beyond that schema)."""
    root = _schema_only(ElementTree.fromstring(xml_text))
    for suite_element, suite_figures in zip(root.iter("testsuite"), figures, strict=True):
        for case, case_figures in zip(suite_element.iter("testcase"), suite_figures, strict=True):
            if case_figures:
                properties = ElementTree.Element("properties")
                for key, value in case_figures.items():
                    ElementTree.SubElement(properties, "property", name=clean(key), value=clean(value))
                case.insert(0, properties)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def _schema_only(root: ElementTree.Element) -> ElementTree.Element:
    """junit-xml's output kept to junit-10.xsd: no attribute the schema lacks, no exponent in a time."""
    for element in root.iter():
        for attribute in _NOT_IN_SCHEMA.get(element.tag, ()):
            element.attrib.pop(attribute, None)
        if element.tag in ("testsuites", "testsuite") and "time" in element.attrib:
            element.set("time", f"{float(element.get('time')):.3f}")  # the schema has no 1e-06
    return root


@dataclass(frozen=True)
class JudgedCase:
    """A testcase of a command that judges runs rather than making one (compare, presubmit, bisect)."""

    name: str
    classname: str
    failure: str = ""  # set: the case failed, with this message
    skipped: str = ""
    detail: str = ""
    error: str = ""  # set: the case could not be judged (infrastructure), with this message
    seconds: float = 0.0
    failure_type: str = "regression"


def verdicts_junit_xml(name: str, properties: dict[str, str], verdicts: list[JudgedCase]) -> str:
    cases = []
    for verdict in verdicts:
        case = TestCase(clean(verdict.name), classname=clean(f"{name}.{verdict.classname}"),
                        elapsed_sec=verdict.seconds, stdout=clean(verdict.detail) or None)
        if verdict.failure:
            case.add_failure_info(message=clean(verdict.failure), failure_type=verdict.failure_type)
        elif verdict.error:
            case.add_error_info(message=clean(verdict.error))
        elif verdict.skipped:
            case.add_skipped_info(message=clean(verdict.skipped))
        cases.append(case)
    xml_text = to_xml_report_string([TestSuite(name, cases, properties=_cleaned(properties))], encoding="utf-8")
    return ElementTree.tostring(_schema_only(ElementTree.fromstring(xml_text)), encoding="unicode",
                                xml_declaration=True)


def results_json(suites: list[SuiteResult]) -> str:
    """Everything a run found, as results.json: what compare, merge and KCIDB read back."""
    return json.dumps(records(suites), indent=2, allow_nan=False)


def records(suites: list[SuiteResult]) -> list[dict]:
    """The suites as results.json's records, for a reader in the same process (KCIDB) and for the file."""
    def stage_record(stage: StageResult) -> dict:
        return {"status": stage.status, "message": stage.message, "seconds": stage.seconds, "detail": stage.detail}

    def step_record(result: StepResult) -> dict:
        return {
            "name": result.step.name,
            "program": result.step.program,
            "args": list(result.step.args),
            "expect": result.step.expect,
            "status": result.status,
            "message": result.message,
            "seconds": round(result.seconds, 3),
            "figures": result.figures,
            # What failed, as data: kind, subjects, the figures compared (the message is for people).
            "problems": [{"kind": problem.kind, "about": list(problem.about), "figures": problem.figures}
                         for problem in result.problems],
            **({"known": list(result.known), "known_subjects": list(result.known_subjects)} if result.known else {}),
            **({"unexpectedly_passing": list(result.unexpectedly_passing)} if result.unexpectedly_passing else {}),
            "samples": timing_samples(result.output),
            "collected": dataclasses.asdict(result.output) if result.output else None,
            "console": result.console,
        }

    return _cleaned([
        {
            "name": suite.name,
            "properties": suite.properties,
            "build": stage_record(suite.build),
            "boot": stage_record(suite.boot),
            "steps": [step_record(step) for step in suite.steps],
        }
        for suite in suites
    ])


_LABELS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.CRASHED: "CRASH", Status.TIMEOUT: "TIMEOUT",
           Status.SKIPPED: "SKIP", Status.INTERRUPTED: "STOPPED", Status.KNOWN_FAILURE: "KNOWN"}


def _step_line(result: StepResult) -> str:
    figures = result.figures
    detail = result.message.splitlines()[0] if result.message else ""
    if result.passed and not result.unexpectedly_passing:
        parts = []
        if "acquired_delta" in figures:
            parts.append(f"pins +{figures['acquired_delta']}/-{figures['released_delta']}")
        if "get_usec.0" in figures:
            parts.append(f"get {figures['get_usec.0']} us, put {figures['put_usec.0']} us")
        detail = ", ".join(parts)
    return f"  {_LABELS[result.status]:<7} {result.step.name:<28} {detail}"


def summary(suites: list[SuiteResult]) -> str:
    """The terminal's closing lines: a line per suite and step, then the counts."""
    lines = []
    for suite in suites:
        stages = ", ".join(
            f"{name} {stage.status}" + (f" ({stage.message})" if stage.message else "")
            for name, stage in (("build", suite.build), ("boot", suite.boot))
        )
        lines.append(f"{suite.name}: {stages}")
        lines += [f"    {line.strip()}" for stage in (suite.build, suite.boot) if stage.status == Status.FAILED
                  for line in stage.detail.splitlines()[1:]]
        lines += [_step_line(step) for step in suite.steps]
    statuses = [status for suite in suites for status in suite.statuses]
    counted = [Status.PASSED, Status.FAILED, Status.SKIPPED] + ([Status.KNOWN_FAILURE] if Status.KNOWN_FAILURE
                                                                in statuses else [])
    lines.append(", ".join(f"{statuses.count(status)} {status}" for status in counted))
    return "\n".join(lines)


def write_reports(suites: list[SuiteResult], run_dir: RunDir) -> None:
    """results.json and junit.xml in the run directory."""
    write_atomically(run_dir.results, results_json(suites))
    write_atomically(run_dir.junit, junit_xml(suites))
