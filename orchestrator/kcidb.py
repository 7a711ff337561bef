"""A run as KCIDB JSON, the shape KernelCI's results database takes (kci-dev submits it).

Written from results.json's records, so a merged result converts the same
way as a single run. The schema version is pinned: a deployment may not
take the newest minor version yet. Checkouts are identified by gupvm's
source identity (git trees by their commit, other trees by their content),
builds by (tree, arch, config), tests by their dotted path under
gupvm.<arch>.<plan>.
"""

import hashlib
import json
import re
from pathlib import Path

from orchestrator.arches import all_arches
from orchestrator.parse import CaseStatus, KtapResult
from orchestrator.results import Status

SCHEMA_VERSION = "5.3"
ORIGIN = "gupvm"
EXCERPT_CHARS = 16384  # the schema's maxLength of a log_excerpt
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_GIT_IDENTITY = re.compile(r"^git:.*@([0-9a-f]{7,40})")
# KCIDB v5's statuses: FAIL, the tested code is faulty (a kernel that fails a check, crashes or hangs);
# ERROR, the test itself failed (a boot that never reached the plan); MISS, the harness did not run it (gupvm
# was stopped by a signal); SKIP, not applicable (the kernel lacks what the step needs); DONE, completed
# without a verdict on the code: a known failure (misc.known_failure names the upstream reference).
_BUILD_STATUS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.INTERRUPTED: "MISS", Status.SKIPPED: "SKIP"}
_BOOT_STATUS = {Status.PASSED: "PASS", Status.FAILED: "ERROR", Status.INTERRUPTED: "MISS"}
_STEP_STATUS = {Status.PASSED: "PASS", Status.FAILED: "FAIL", Status.CRASHED: "FAIL", Status.TIMEOUT: "FAIL",
                Status.SKIPPED: "SKIP", Status.INTERRUPTED: "MISS", Status.KNOWN_FAILURE: "DONE"}
# A failure the test itself expects (XFAIL) reports no regression: DONE, "completed without reporting the status of
# the tested code", with misc.result saying which; an XPASS fails like a failure.
_CASE_STATUS = {CaseStatus.PASSED: "PASS", CaseStatus.FAILED: "FAIL", CaseStatus.SKIPPED: "SKIP",
                CaseStatus.EXPECTED_FAILURE: "DONE", CaseStatus.UNEXPECTED_PASS: "FAIL"}


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _part(text: str) -> str:
    """One component of a dotted test path: letters, digits, - and _ only."""
    return _PATH_UNSAFE.sub("_", text).strip("_") or "_"


def _excerpt(text: str) -> str:
    text = text.replace("\0", "")
    return text if len(text) <= EXCERPT_CHARS else text[-EXCERPT_CHARS:]


def _checkout(properties: dict) -> dict:
    identity = properties["kernel_source"]
    checkout = {
        "id": f"{ORIGIN}:{_digest(identity)}",
        "origin": ORIGIN,
        "comment": identity,
        "valid": True,
        "misc": {"source_identity": identity, "kernel_version": properties.get("kernel_version", "")},
    }
    if match := _GIT_IDENTITY.match(identity):
        checkout["git_commit_name"] = match.group(1)
    return checkout


def _build(record: dict, checkout_id: str) -> dict:
    properties, stage = record["properties"], record["build"]
    arch = properties["arch"]
    build = {
        "id": f"{checkout_id}-{_part(arch)}-{properties['config_hash']}",
        "checkout_id": checkout_id,
        "origin": ORIGIN,
        "architecture": all_arches()[arch].make_arch,  # KCIDB names architectures as the kernel's ARCH= does
        "config_name": f"tinyconfig+gupvm-{arch}",
        "duration": round(stage["seconds"], 3),
        "status": _BUILD_STATUS[Status(stage["status"])],
        "misc": {key: properties[key] for key in ("arch", "config_hash", "kernel_release", "pae")
                 if key in properties},
    }
    if stage["status"] == Status.FAILED:
        build["log_excerpt"] = _excerpt(stage["detail"] or stage["message"])
    return build


def _tests(record: dict, build_id: str) -> list[dict]:
    properties, boot = record["properties"], record["boot"]
    if boot["status"] == Status.SKIPPED:  # build only, or the build failed (the build says so)
        return []
    prefix = f"{ORIGIN}.{_part(properties['arch'])}.{_part(properties['plan'])}"
    environment = {"comment": f"QEMU {properties.get('accel', '')}, gupvm arch {properties['arch']}"}

    def test(path: str, status: str, seconds: float | None, comment: str, excerpt: str = "",
             misc: dict | None = None) -> dict:
        entry = {"id": f"{build_id}:{path}", "build_id": build_id, "origin": ORIGIN, "path": path,
                 "status": status, "environment": environment}
        if seconds is not None:
            entry["duration"] = round(seconds, 3)
        if comment:
            entry["comment"] = comment
        if excerpt:
            entry["log_excerpt"] = _excerpt(excerpt)
        if misc:
            entry["misc"] = misc
        return entry

    tests = [test(f"{prefix}.boot", _BOOT_STATUS[Status(boot["status"])], boot["seconds"],
                  boot["message"], boot["detail"])]
    for step in record["steps"]:
        path = f"{prefix}.{_part(step['name'])}"
        known = {"known_failure": step["known"]} if step.get("known") else {}
        tests.append(test(path, _STEP_STATUS[Status(step["status"])], step["seconds"], step["message"].splitlines()[0]
                          if step["message"] else "", step["console"] if step["status"] != Status.PASSED else "",
                          {**step["figures"], **known}))
        for index, ktap in enumerate((step["collected"] or {}).get("ktap") or [], start=1):
            label = f"{ktap.get('title') or ''} {ktap['description']}".strip()
            result = KtapResult(**ktap)
            case = result.status
            if result.known_among(step.get("known_subjects", [])):
                tests.append(test(f"{path}.{index}_{_part(label)}"[:200], "DONE", None, label,
                                  misc={"result": Status.KNOWN_FAILURE.value, "known_failure": step["known"]}))
                continue
            tests.append(test(f"{path}.{index}_{_part(label)}"[:200], _CASE_STATUS[case], None, label,
                              misc={"result": case.value} if case == CaseStatus.EXPECTED_FAILURE else None))
    return tests


def kcidb_json(records: list[dict]) -> dict:
    """The KCIDB dataset of results.json's records: each checkout and build once, every test."""
    major, minor = (int(part) for part in SCHEMA_VERSION.split("."))
    checkouts: dict[str, dict] = {}
    builds: dict[str, dict] = {}
    tests: list[dict] = []
    for record in records:
        checkout = _checkout(record["properties"])
        checkouts.setdefault(checkout["id"], checkout)
        build = _build(record, checkout["id"])
        builds.setdefault(build["id"], build)  # the first cell of a build holds its time; the others reuse it
        tests += _tests(record, build["id"])
    return {"version": {"major": major, "minor": minor}, "checkouts": list(checkouts.values()),
            "builds": list(builds.values()), "tests": tests}


def write(path: Path, records: list[dict]) -> None:
    """The records as a KCIDB dataset, in one file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(kcidb_json(records), indent=2))
