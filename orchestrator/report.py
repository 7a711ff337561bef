"""Reports: JUnit XML for CI servers, results.json with everything, a terminal summary."""

import dataclasses
import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from junit_xml import TestCase, TestSuite, to_xml_report_string

from orchestrator.check import StepResult

CONSOLE_EXCERPT_LINES = 400


@dataclass(frozen=True)
class StageResult:
    """The build or the boot of one suite: infrastructure rather than a test of the kernel."""

    status: str  # "passed", "failed" or "skipped"
    message: str = ""
    seconds: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class SuiteResult:
    name: str
    properties: dict[str, str]
    build: StageResult
    boot: StageResult
    steps: tuple[StepResult, ...]

    @property
    def statuses(self) -> list[str]:
        """Every testcase's outcome as passed, failed or skipped; crashes and timeouts are failures."""
        everything = [self.build.status, self.boot.status] + [step.status for step in self.steps]
        return [status if status in ("passed", "skipped") else "failed" for status in everything]


def _excerpt(text: str) -> str:
    lines = text.replace("\r", "").splitlines()
    if len(lines) > CONSOLE_EXCERPT_LINES:
        lines = [f"[... {len(lines) - CONSOLE_EXCERPT_LINES} earlier lines in the console log]"] + lines[
            -CONSOLE_EXCERPT_LINES:
        ]
    return "\n".join(lines)


def _stage_case(suite: SuiteResult, name: str, stage: StageResult, seconds: float) -> TestCase:
    case = TestCase(name, classname=suite.name, elapsed_sec=seconds, stdout=stage.detail or None)
    if stage.status == "failed":
        case.add_failure_info(message=stage.message, failure_type=name)
    elif stage.status == "skipped":
        case.add_skipped_info(message=stage.message)
    return case


def _step_case(suite: SuiteResult, result: StepResult) -> TestCase:
    case = TestCase(result.step.name, classname=suite.name, elapsed_sec=result.seconds,
                    stdout=_excerpt(result.console))
    if result.status == "skipped":
        case.add_skipped_info(message=result.message)
    elif result.status != "passed":
        case.add_failure_info(message=result.message, failure_type=result.status)
    return case


def _ktap_cases(suite: SuiteResult, result: StepResult) -> list[TestCase]:
    """A KTAP program's results (gup_longterm's), one testcase each."""
    if not (result.step.ktap_cases and result.output):
        return []
    cases = []
    for ktap in result.output.ktap:
        label = f"{ktap.title} ({ktap.description})" if ktap.title else ktap.description
        case = TestCase(f"{result.step.name}: {ktap.number} {label}", classname=suite.name)
        if ktap.directive == "SKIP":
            case.add_skipped_info(message=ktap.reason or "skipped")
        elif not ktap.ok:
            case.add_failure_info(message=f"not ok {ktap.number} {ktap.description}", failure_type="ktap")
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
    cases = [_cases(suite) for suite in suites]
    junit_suites = [
        TestSuite(suite.name, [case for case, _ in suite_cases], properties=suite.properties)
        for suite, suite_cases in zip(suites, cases, strict=True)
    ]
    return _add_case_properties(to_xml_report_string(junit_suites, encoding="utf-8"),
                                [[figures for _, figures in suite_cases] for suite_cases in cases])


def _add_case_properties(xml_text: str, figures: list[list[dict[str, str]]]) -> str:
    """Each step's figures as <properties> of its testcase, as pytest's record_property writes them."""
    root = ElementTree.fromstring(xml_text)
    for suite_element, suite_figures in zip(root.iter("testsuite"), figures, strict=True):
        for case, case_figures in zip(suite_element.iter("testcase"), suite_figures, strict=True):
            if case_figures:
                properties = ElementTree.Element("properties")
                for key, value in case_figures.items():
                    ElementTree.SubElement(properties, "property", name=key, value=value)
                case.insert(0, properties)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)


def results_json(suites: list[SuiteResult]) -> str:
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
            "collected": dataclasses.asdict(result.output) if result.output else None,
            "console": result.console,
        }

    return json.dumps(
        [
            {
                "name": suite.name,
                "properties": suite.properties,
                "build": dataclasses.asdict(suite.build),
                "boot": dataclasses.asdict(suite.boot),
                "steps": [step_record(step) for step in suite.steps],
            }
            for suite in suites
        ],
        indent=2,
        default=sorted,  # frozensets
    )


_LABELS = {"passed": "PASS", "failed": "FAIL", "crashed": "CRASH", "timeout": "TIMEOUT", "skipped": "SKIP"}


def _step_line(result: StepResult) -> str:
    figures = result.figures
    detail = result.message.splitlines()[0] if result.message else ""
    if result.passed:
        parts = []
        if "acquired_delta" in figures:
            parts.append(f"pins +{figures['acquired_delta']}/-{figures['released_delta']}")
        if "get_usec.0" in figures:
            parts.append(f"get {figures['get_usec.0']} us, put {figures['put_usec.0']} us")
        detail = ", ".join(parts)
    return f"  {_LABELS[result.status]:<7} {result.step.name:<28} {detail}"


def summary(suites: list[SuiteResult]) -> str:
    lines = []
    for suite in suites:
        stages = ", ".join(
            f"{name} {stage.status}" + (f" ({stage.message})" if stage.message else "")
            for name, stage in (("build", suite.build), ("boot", suite.boot))
        )
        lines.append(f"{suite.name}: {stages}")
        lines += [f"    {line.strip()}" for stage in (suite.build, suite.boot) if stage.status == "failed"
                  for line in stage.detail.splitlines()[1:]]
        lines += [_step_line(step) for step in suite.steps]
    statuses = [status for suite in suites for status in suite.statuses]
    lines.append(", ".join(f"{statuses.count(status)} {status}" for status in ("passed", "failed", "skipped")))
    return "\n".join(lines)


def write_reports(suites: list[SuiteResult], run_dir: Path, junit_path: Path) -> None:
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    junit_path.write_text(junit_xml(suites))
    (run_dir / "results.json").write_text(results_json(suites))
