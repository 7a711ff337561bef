"""Real runs of the ecosystem features: shards merged, KCIDB from a real run, progress on a pty and in CI.

Cheap by design: the two-step plan on kernels the other end-to-end tests
build (the default run's 6.1 x86_64; 7.3's x86_64, i386-pae and arm64 from
test_e2e's smoke test), so in .ci/run nothing here builds a kernel.
"""

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pexpect
import pytest
from kcidb_io import schema

pytestmark = pytest.mark.e2e

DATA = Path(__file__).parent / "data"
TWO_STEPS = str(DATA / "two-steps.plan.toml")
SHARDED_ARCHES = ("x86_64", "i386-pae", "arm64")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def gupvm(*args: str, cwd: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("CI_NODE_")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True,
                          env=env | environ)


def cases(junit: Path) -> set[tuple[str, str, str]]:
    """(suite, classname, name) of every testcase, with its verdict."""
    root = ElementTree.parse(junit).getroot()
    return {(suite.get("name"), case.get("classname"), case.get("name") + ":" + ",".join(
        child.tag for child in case if child.tag in ("failure", "error", "skipped")))
        for suite in root.findall("testsuite") for case in suite.findall("testcase")}


def test_three_shards_merged_are_the_unsharded_run(tmp_path: Path):
    args = ["run", "--kernel-src", "debian:7.3", *(f"--arch={arch}" for arch in SHARDED_ARCHES), "--plan", TWO_STEPS]
    whole = gupvm(*args, "--kcidb", str(tmp_path / "kcidb.json"), "--out", "whole", cwd=tmp_path)
    assert whole.returncode == 0, whole.stdout + whole.stderr
    (whole_dir,) = (tmp_path / "whole").iterdir()
    shard_dirs = []
    for index in (1, 2, 3):
        shard = gupvm(*args, "--shard", "auto", "--out", f"shard{index}", cwd=tmp_path,
                      CI_NODE_INDEX=str(index), CI_NODE_TOTAL="3")
        assert shard.returncode == 0, shard.stdout + shard.stderr
        assert f"shard {index}/3 from CI_NODE_INDEX/CI_NODE_TOTAL: 1 of 3 cells" in shard.stdout
        shard_dirs += list((tmp_path / f"shard{index}").iterdir())
    merged = gupvm("merge", "merged", *map(str, shard_dirs), "--kcidb", str(tmp_path / "merged.kcidb.json"),
                   cwd=tmp_path)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    assert cases(tmp_path / "merged/junit.xml") == cases(whole_dir / "junit.xml")
    assert len(cases(whole_dir / "junit.xml")) == 3 * (2 + 2)
    again = gupvm("merge", "merged-again", *map(str, shard_dirs[:2]), cwd=tmp_path)
    assert again.returncode == 3 and "missing: " in again.stdout  # a shard lost: the merge fails

    data = json.loads((tmp_path / "kcidb.json").read_text())
    schema.V5_3.validate(data)
    merged_data = json.loads((tmp_path / "merged.kcidb.json").read_text())
    assert {test["path"] for test in merged_data["tests"]} == {test["path"] for test in data["tests"]}
    paths = {test["path"] for test in data["tests"]}
    assert {f"gupvm.{arch}.two-steps.pin_fast" for arch in SHARDED_ARCHES} <= paths
    assert len(data["builds"]) == 3 and len(data["checkouts"]) == 1


def test_a_terminal_shows_each_stage_live(tmp_path: Path):
    env = {name: value for name, value in os.environ.items() if name not in ("CI", "NO_COLOR")}
    child = pexpect.spawn(sys.executable, ["-m", "orchestrator", "run", "--plan", TWO_STEPS], cwd=str(tmp_path),
                          env=env | {"TERM": "xterm-256color"}, encoding="utf-8", dimensions=(40, 200),
                          timeout=600)
    try:
        for stage in (r"debian-6\.1 unpack: done", r"debian-6\.1/x86_64 config: done",
                      r"debian-6\.1/x86_64 build: done", r"step [12]/2 (pin|gup)_fast",
                      r"debian-6\.1/x86_64/two-steps boot: done", r"4 passed, 0 failed, 0 skipped"):
            child.expect(stage)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_under_ci_a_line_comes_at_least_once_a_minute_without_control_sequences(tmp_path: Path):
    # The guest's sleep must take real time: under icount with sleep=off, QEMU skips idle time.
    result = gupvm("run", "--plan", str(DATA / "slow-step.plan.toml"), "--clock", "realtime", cwd=tmp_path,
                   CI="true", TERM="xterm")
    assert result.returncode == 0, result.stdout + result.stderr
    stamped = [line for line in result.stdout.splitlines() if re.match(r"\[\d\d:\d\d:\d\d\] gupvm: ", line)]
    seconds = [int(line[1:3]) * 3600 + int(line[4:6]) * 60 + int(line[7:9]) for line in stamped]
    gaps = [(later - earlier) % 86400 for earlier, later in zip(seconds, seconds[1:], strict=False)]
    assert max(gaps) <= 60, stamped
    assert any(": running " in line and "step 2/2 quiet_minute" in line for line in stamped), stamped
    assert not CONTROL.search(result.stdout.replace("\n", ""))
    assert "\n4 passed, 0 failed, 0 skipped\n" in result.stdout  # the closing summary, as before
