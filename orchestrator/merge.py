"""Shards put back together: the run directories of one pipeline's jobs merged into one result.

Each run directory has a manifest (cells.json) naming every cell of the
command line and the ones this directory ran; the cells to merge are those
of every directory's command line (one for the shards of a run, one per job
of a CI matrix of command lines). A merge takes each cell once:
a cell two directories ran is refused, and a cell none ran is an error of
its own in the merged JUnit, so a crashed job cannot make a pipeline green
by omission.
"""

import json
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from pathlib import Path

from orchestrator import exit_codes
from orchestrator.cells import Cell, Shard
from orchestrator.errors import UsageError
from orchestrator.layout import RunDir
from orchestrator.paths import write_atomically
from orchestrator.results import Status

MISSING_MESSAGE = "missing: no shard's run directory has this cell (did its job fail before writing results?)"


def write_manifest(run_dir: RunDir, cells: tuple[Cell, ...], ran: tuple[Cell, ...], shard: Shard | None) -> None:
    """cells.json: the command line's cells and the ones this directory ran, for merge."""
    manifest = {
        "shard": str(shard) if shard else None,
        "cells": [{"id": cell.id, "suite": cell.suite_name} for cell in cells],
        "ran": [cell.id for cell in ran],
    }
    write_atomically(run_dir.manifest, json.dumps(manifest, indent=2))


@dataclass(frozen=True)
class _ShardRun:
    path: Path
    cells: list[dict]
    ran: list[str]
    records: dict[str, dict]  # suite name -> results.json record
    junit: dict[str, ElementTree.Element]  # suite name -> <testsuite>


def _read(path: Path) -> _ShardRun:
    run_dir = RunDir(path)
    files = [run_dir.manifest, run_dir.results, run_dir.junit]
    if missing := [file.name for file in files if not file.is_file()]:
        raise UsageError(f"{path}: not a gupvm run directory (no {', '.join(missing)}); give directories that "
                         f"'gupvm run' made")
    try:
        manifest = json.loads(files[0].read_text())
        records = {record["name"]: record for record in json.loads(files[1].read_text())}
        junit = {suite.get("name"): suite for suite in ElementTree.parse(files[2]).getroot().iter("testsuite")}
        return _ShardRun(path, manifest["cells"], manifest["ran"], records, junit)
    except (ValueError, KeyError, TypeError, ElementTree.ParseError) as error:
        raise UsageError(f"{path}: unreadable run directory ({error})") from None


def merge_runs(out: Path, run_dirs: list[Path]) -> tuple[int, str]:
    """Write junit.xml, results.json and cells.json of the union into out; the exit code and a summary line."""
    runs = [_read(path) for path in run_dirs]
    # Shards of one command line share their cells; the jobs of a CI matrix (a command line each) add theirs.
    cells = list({cell["id"]: cell for run in runs for cell in run.cells}.values())
    owner: dict[str, Path] = {}
    for run in runs:
        for cell_id in run.ran:
            if cell_id in owner:
                raise UsageError(f"cell {cell_id} is in both {owner[cell_id]} and {run.path}; merge each shard once")
            owner[cell_id] = run.path
    merged = RunDir(out)
    if out.exists() and any(path.exists() for path in (merged.junit, merged.results, merged.manifest)):
        raise UsageError(f"{out} already holds results; give a new directory to merge into")
    by_path = {run.path: run for run in runs}
    records, suites, missing = [], [], []
    for cell in cells:
        if cell["id"] not in owner:
            missing.append(cell["id"])
            suites.append(_missing_suite(cell["suite"]))
            continue
        run = by_path[owner[cell["id"]]]
        records.append(run.records[cell["suite"]])
        suites.append(run.junit[cell["suite"]])
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(merged.junit, _junit(suites))
    write_atomically(merged.results, json.dumps(records, indent=2))
    write_atomically(merged.manifest, json.dumps({"shard": None, "cells": cells, "ran": list(owner),
                                                  "missing": missing}, indent=2))
    code = exit_codes.decide(
        signum=None,
        infrastructure_failed=bool(missing) or any(record[stage]["status"] in (Status.FAILED, Status.INTERRUPTED)
                                                   for record in records for stage in ("build", "boot")),
        tests_failed=any(Status(step["status"]).failing for record in records for step in record["steps"]),
    )
    line = f"gupvm: merged {len(owner)} of {len(cells)} cells from {len(runs)} run directories into {out}"
    if missing:
        line += f"; missing: {', '.join(missing)}"
    return code, line


def _missing_suite(name: str) -> ElementTree.Element:
    suite = ElementTree.Element("testsuite", name=name, tests="1", failures="0", errors="1", skipped="0", time="0")
    case = ElementTree.SubElement(suite, "testcase", name="cell", classname=name, time="0")
    ElementTree.SubElement(case, "error", type="missing", message=MISSING_MESSAGE)
    return suite


def _junit(suites: list[ElementTree.Element]) -> str:
    root = ElementTree.Element("testsuites")
    for attribute in ("tests", "failures", "errors"):
        root.set(attribute, str(sum(int(suite.get(attribute, "0")) for suite in suites)))
    root.set("time", f"{sum(float(suite.get('time', '0')) for suite in suites):.3f}")
    root.extend(suites)
    return ElementTree.tostring(root, encoding="unicode", xml_declaration=True)
