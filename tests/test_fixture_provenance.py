"""tests/data/README.md's provenance table says true things of every captured console log."""

import re
import subprocess

import pytest
from conftest import DATA

ALWAYS = ("ready", "environment", "step-begin", "memory-before", "vmstat-before", "vmstat-after", "memory-after",
          "stuck-tasks", "output", "kmsg", "step-end")
ROW = re.compile(r"^\| (\S+\.console\.log) \| ([0-9a-f]{7,}) \| (\S+) \| (.*) \|$", re.M)


@pytest.fixture(scope="module")
def table() -> dict[str, tuple[str, str, str]]:
    return {log: (commit, kernel, gaps) for log, commit, kernel, gaps in ROW.findall((DATA / "README.md").read_text())}


def test_every_console_log_is_listed(table):
    assert set(table) == {path.name for path in DATA.glob("*.console.log")}


@pytest.mark.parametrize("log", sorted(path.name for path in DATA.glob("*.console.log")))
def test_the_kernel_and_every_missing_marker_are_as_the_table_says(table, log):
    _, kernel, gaps = table[log]
    text = (DATA / log).read_text(errors="replace")
    assert re.search(rf"@@gupvm ready {re.escape(kernel)}\r?\n", text)
    missing = [marker for marker in ALWAYS if f"@@gupvm {marker}" not in text]
    named = re.findall(r"no `([\w-]+)` line", gaps)
    assert named == missing
    assert ("tsc=reliable" in gaps) == ("realtime clock without tsc=reliable" in gaps)
    if "without tsc=reliable" in gaps:
        assert "tsc=reliable" not in text


def test_the_gupvm_named_added_the_log(table):
    shallow = subprocess.run(["git", "-C", str(DATA), "rev-parse", "--is-shallow-repository"], capture_output=True,
                             text=True)
    tracked = subprocess.run(["git", "-C", str(DATA), "ls-files", "--error-unmatch", "README.md"], capture_output=True)
    if shallow.stdout.strip() != "false" or tracked.returncode != 0:
        pytest.skip("needs the logs in a git clone with its whole history (not shallow, not a copy)")
    for log, (commit, _, _) in table.items():
        # With --follow, the commit that added it under an earlier name; without, the one that added this file
        # (--follow also takes a new log much like an older one for a copy of it).
        added = [subprocess.run(["git", "-C", str(DATA), "log", *follow, "--diff-filter=A", "--format=%h", "--", log],
                                capture_output=True, text=True, check=True).stdout.split()[-1:]
                 for follow in (["--follow"], [])]
        assert any(found and (found[0].startswith(commit) or commit.startswith(found[0])) for found in added), \
            (log, added)
