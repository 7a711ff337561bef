"""The reports of replayed real runs are byte-for-byte what they were when the golden files were written.

results.json, junit.xml and the KCIDB JSON are what CI servers, KernelCI
and `gupvm compare` read: a refactoring of the result model must not change
a byte of them. Each case replays a captured console log, fixes the times
(a replay's own wall time is not the run's), and compares the three reports
with tests/data/reports/. GUPVM_WRITE_GOLDEN=1 rewrites the files, for a
change that means to alter the reports (review the diff).
"""

import dataclasses
import json
import os

import pytest
from conftest import DATA, replayed

from orchestrator import kcidb
from orchestrator.arches import all_arches
from orchestrator.check import check_step
from orchestrator.report import junit_xml, records, results_json
from orchestrator.results import StageResult, SuiteResult

GOLDEN = DATA / "reports"
CASES = {
    "6.1-x86_64-smoke": ("6.1-x86_64-smoke.console.log", "6.1-x86_64-smoke.plan.toml", "smoke"),
    "6.1-x86_64-recovery": ("6.1-x86_64-recovery.console.log", "recovery.plan.toml", "recovery"),
    "6.12-x86_64-hugepage": ("6.12-x86_64-hugepage.console.log", "hugepage.plan.toml", "hugepage"),
}


def suite_of(name: str, tmp_path_factory) -> SuiteResult:
    log, plan_file, plan = CASES[name]
    version = name.split("-")[0]
    steps = tuple(dataclasses.replace(check_step(step, capture, all_arches()["x86_64"]), seconds=1.5)
                  for step, capture in replayed(log, plan_file, tmp_path_factory).values())
    properties = {"arch": "x86_64", "kernel_source": f"debian:linux-source-{version}", "kernel_version": version,
                  "config_hash": "0123456789abcdef", "kernel_release": version, "accel": "tcg", "plan": plan,
                  "bits": "64"}
    return SuiteResult(f"gupvm.debian-{version.replace('.', '_')}.x86_64.{plan}", properties,
                       StageResult("passed", "", 150.0), StageResult("passed", "3 boot(s)", 30.0), steps)


def reports(suite: SuiteResult) -> dict[str, str]:
    results = results_json([suite])
    return {"results.json": results, "junit.xml": junit_xml([suite]),
            "kcidb.json": json.dumps(kcidb.kcidb_json(records([suite])), indent=2)}  # as gupvm run writes it


@pytest.mark.parametrize("name", CASES)
def test_reports_are_unchanged(name, tmp_path_factory):
    written = reports(suite_of(name, tmp_path_factory))
    for kind, text in written.items():
        golden = GOLDEN / f"{name}.{kind}"
        if os.environ.get("GUPVM_WRITE_GOLDEN"):
            golden.write_text(text)
        assert text == golden.read_text(), f"{golden.name} changed"
