"""Merging shards' run directories: every cell once, a missing one an error, a duplicate refused."""

import json
import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.cells import Shard, product, shard_cells
from orchestrator.check import check_step
from orchestrator.errors import UsageError
from orchestrator.layout import RunDir
from orchestrator.merge import MISSING_MESSAGE, merge_runs, write_manifest
from orchestrator.report import write_reports
from orchestrator.results import StageResult, Status, SuiteResult

CELLS = product(["debian:6.1"], ["x86_64", "i386", "i386-pae"], ["smoke"])


@pytest.fixture(scope="module")
def suite_of(smoke_61):
    steps = tuple(check_step(step, capture, all_arches()["x86_64"]) for step, capture in smoke_61.values())

    def make(cell, boot="passed"):
        return SuiteResult(cell.suite_name, {"arch": cell.arch, "kernel_source": "debian:linux-source-6.1 6.1.1-1",
                                             "config_hash": "0123456789abcdef", "plan": "smoke", "bits": "64"},
                           StageResult("passed", "cached", 1.0), StageResult(boot, "1 boot(s)", 30.0),
                           steps if boot == "passed" else ())
    return make


def shard_dir(tmp_path: Path, suite_of, index: int, total: int, boot="passed") -> Path:
    run_dir = tmp_path / f"shard-{index}"
    run_dir.mkdir()
    mine = shard_cells(CELLS, Shard(index, total))
    write_reports([suite_of(cell, boot) for cell in mine], RunDir(run_dir))
    write_manifest(RunDir(run_dir), CELLS, mine, Shard(index, total))
    return run_dir


def test_three_shards_merge_into_every_cell_in_run_order(tmp_path: Path, suite_of):
    dirs = [shard_dir(tmp_path, suite_of, index, 3) for index in (3, 1, 2)]
    code, line = merge_runs(tmp_path / "merged", dirs)
    assert code == 0 and "merged 3 of 3 cells from 3 run directories" in line
    root = ElementTree.parse(tmp_path / "merged/junit.xml").getroot()
    assert [suite.get("name") for suite in root.findall("testsuite")] == [cell.suite_name for cell in CELLS]
    assert int(root.get("tests")) == sum(int(suite.get("tests")) for suite in root.findall("testsuite")) == 3 * 9
    records = json.loads((tmp_path / "merged/results.json").read_text())
    assert [record["name"] for record in records] == [cell.suite_name for cell in CELLS]


def test_a_missing_cell_is_an_error_and_exits_like_a_failed_boot(tmp_path: Path, suite_of):
    dirs = [shard_dir(tmp_path, suite_of, index, 3) for index in (1, 3)]
    code, line = merge_runs(tmp_path / "merged", dirs)
    missing = shard_cells(CELLS, Shard(2, 3))[0]
    assert code == 3 and f"missing: {missing.id}" in line
    root = ElementTree.parse(tmp_path / "merged/junit.xml").getroot()
    suite = root.find(f"testsuite[@name='{missing.suite_name}']")
    assert suite.find("testcase/error").get("type") == "missing"
    assert root.get("errors") == "1"
    assert [record["name"] for record in json.loads((tmp_path / "merged/results.json").read_text())] == \
        [cell.suite_name for cell in CELLS if cell != missing]  # the cells after the missing one are all there
    manifest = json.loads((tmp_path / "merged/cells.json").read_text())
    assert manifest == {"shard": None, "cells": [{"id": cell.id, "suite": cell.suite_name} for cell in CELLS],
                        "ran": [cell.id for cell in CELLS if cell != missing], "missing": [missing.id]}
    assert line.endswith(f"into {tmp_path / 'merged'}; missing: {missing.id}")


def test_an_empty_directory_takes_a_merge(tmp_path: Path, suite_of):
    (tmp_path / "merged").mkdir()
    dirs = [shard_dir(tmp_path, suite_of, index, 3) for index in (1, 2, 3)]
    assert merge_runs(tmp_path / "merged", dirs)[0] == 0


def test_a_shards_manifest_says_which_cells_it_ran_of_all(tmp_path: Path, suite_of):
    run_dir = shard_dir(tmp_path, suite_of, 2, 3)
    manifest = json.loads(RunDir(run_dir).manifest.read_text())
    assert manifest == {"shard": "2/3", "cells": [{"id": cell.id, "suite": cell.suite_name} for cell in CELLS],
                        "ran": [cell.id for cell in shard_cells(CELLS, Shard(2, 3))]}


def test_a_failed_boot_in_one_shard_is_infrastructure(tmp_path: Path, suite_of):
    dirs = [shard_dir(tmp_path, suite_of, 1, 2, boot="failed"), shard_dir(tmp_path, suite_of, 2, 2)]
    assert merge_runs(tmp_path / "merged", dirs)[0] == 3


@pytest.mark.parametrize("status, code", [
    (Status.FAILED, 1), (Status.CRASHED, 1), (Status.TIMEOUT, 1), (Status.SKIPPED, 0), (Status.PASSED, 0),
])
def test_one_step_of_one_shard_decides_the_merge(tmp_path: Path, suite_of, status, code):
    dirs = [shard_dir(tmp_path, suite_of, 1, 2), shard_dir(tmp_path, suite_of, 2, 2)]
    results = RunDir(dirs[1]).results
    records = json.loads(results.read_text())
    records[0]["steps"][3]["status"] = status
    results.write_text(json.dumps(records))
    assert merge_runs(tmp_path / "merged", dirs)[0] == code


@pytest.mark.parametrize("case, complaint", [
    ("duplicate", "is in both"),
    ("not a run directory", "not a gupvm run directory (no cells.json"),
    ("out holds results", "already holds results"),
])
def test_bad_merges_are_refused(tmp_path: Path, suite_of, case, complaint):
    dirs = [shard_dir(tmp_path, suite_of, index, 2) for index in (1, 2)]
    out = tmp_path / "merged"
    if case == "duplicate":  # the same cell run by two jobs: another directory with the same results
        copy = tmp_path / "shard-1-again"
        shutil.copytree(dirs[0], copy)
        dirs.append(copy)
    elif case == "not a run directory":
        dirs.append(tmp_path)
    else:
        out.mkdir()
        (out / "results.json").write_text("[]")
    with pytest.raises(UsageError, match=re.escape(complaint)):
        merge_runs(out, dirs)
    assert case == "out holds results" or not out.exists()  # nothing written


def test_the_jobs_of_a_ci_matrix_merge_the_union_of_their_command_lines(tmp_path: Path, suite_of):
    dirs = []
    for arch in ("x86_64", "i386"):  # parallel:matrix: one command line per job, no --shard
        run_dir = tmp_path / arch
        run_dir.mkdir()
        cells = product(["debian:6.1"], [arch], ["smoke"])
        write_reports([suite_of(cell) for cell in cells], RunDir(run_dir))
        write_manifest(RunDir(run_dir), cells, cells, None)
        dirs.append(run_dir)
    code, line = merge_runs(tmp_path / "merged", dirs)
    assert code == 0 and "merged 2 of 2 cells" in line
    root = ElementTree.parse(tmp_path / "merged/junit.xml").getroot()
    assert [suite.get("name") for suite in root.findall("testsuite")] == [
        "gupvm.debian-6_1.x86_64.smoke", "gupvm.debian-6_1.i386.smoke"]


def test_the_merged_junit_adds_up_its_suites_and_a_missing_cell_is_one_error(tmp_path: Path, suite_of):
    dirs = [shard_dir(tmp_path, suite_of, index, 3, boot="failed" if index == 3 else "passed") for index in (1, 3)]
    merge_runs(tmp_path / "merged", dirs)
    text = (tmp_path / "merged/junit.xml").read_text()
    assert text.startswith("<?xml version='1.0' encoding='utf-8'?>")
    root = ElementTree.fromstring(text)
    suites = root.findall("testsuite")
    for attribute in ("tests", "failures", "errors"):
        assert root.get(attribute) == str(sum(int(suite.get(attribute, "0")) for suite in suites)), attribute
    assert int(root.get("failures")) >= 1 and int(root.get("errors")) == 1  # the failed boot; the missing cell
    assert root.get("time") == f"{sum(float(suite.get('time', '0')) for suite in suites):.3f}"
    assert float(root.get("time")) > 0
    missing = shard_cells(CELLS, Shard(2, 3))[0]
    suite = root.find(f"testsuite[@name='{missing.suite_name}']")
    assert suite.attrib == {"name": missing.suite_name, "tests": "1", "failures": "0", "errors": "1", "skipped": "0",
                            "time": "0"}
    (case,) = suite.findall("testcase")
    assert case.attrib == {"name": "cell", "classname": missing.suite_name, "time": "0"}
    assert case.find("error").attrib == {"type": "missing", "message": MISSING_MESSAGE}
