"""The command line's promises about bad input: exit 2 and one clear line, nothing started."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def gupvm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    environ = {name: value for name, value in os.environ.items() if not name.startswith("CI_NODE_")}
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True,
                          env=environ)


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["run", "--kernel-src", "/nonexistent"], "--kernel-src /nonexistent: no such directory"),
        (["run", "--arch", "sparc"], "unknown arch 'sparc'"),
        (["run", "--plan", "nosuch"], "--plan nosuch: no such plan"),
        (["run", "--kconfig-add", "DEBUG_VM"], "--kconfig-add 'DEBUG_VM'"),
        (["run", "--kconfig", "/nonexistent.config"], "--kconfig /nonexistent.config: no such file"),
        (["run", "--accel", "hvf"], "invalid choice: 'hvf'"),
        (["run", "--jobs", "0"], "--jobs 0"),
        (["run", "--samples", "0"], "--samples 0"),
        (["run", "--clock", "icount", "--accel", "kvm"], "--clock icount cannot run under --accel kvm"),
        (["run", "--clock", "wallclock"], "invalid choice: 'wallclock'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["run", "--shard", "4/3"], "--shard 4/3: expected I/N with 1 <= I <= N"),
        (["run", "--shard", "auto"], "--shard auto: CI_NODE_INDEX and CI_NODE_TOTAL are not set"),
        (["run", "--plan", "smoke", "--plan", "nosuch"], "--plan nosuch: no such plan"),
        (["merge", "merged", "/nonexistent"], "/nonexistent: not a gupvm run directory"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args, complaint):
    result = gupvm(*args, "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path) if args[0] == "run" else gupvm(
        *args, cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gupvm: error: ")
    assert complaint in lines[0]
    assert not (tmp_path / "out").exists()  # nothing started, no run directory left behind


@pytest.mark.parametrize("args", [["--arch", "sparc"], ["--kernel-src", "/nonexistent"]])
def test_bad_input_aborts_git_bisect_run(tmp_path: Path, args):
    result = gupvm("run", "--git-bisect-codes", *args, "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 128, result.stderr


def test_a_commit_before_gup_test_cannot_be_tested(tmp_path: Path):
    (tmp_path / "linux/mm").mkdir(parents=True)
    (tmp_path / "linux/Kbuild").write_text("")
    result = gupvm("run", "--git-bisect-codes", "--kernel-src", str(tmp_path / "linux"), "--cache-dir",
                   str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 125, result.stderr


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["bisect"], "bisect needs --kernel-src PATH"),
        (["bisect", "--kernel-src", "{tmp}", "--good", "a", "--bad", "b"], "not a git checkout"),
        (["bisect", "--kernel-src", "{repo}", "--good", "v0", "--bad", "nosuch"], "'nosuch' names no commit"),
        (["bisect", "--kernel-src", "{repo}", "--good", "HEAD", "--bad", "v0"], "is not an ancestor of --bad"),
        (["bisect", "--kernel-src", "{repo}", "--good", "v0", "--bad", "HEAD", "--step", "nosuch"],
         "--step nosuch: plan smoke has no such step"),
        (["bisect", "--kernel-src", "{repo}", "--good", "v0", "--bad", "HEAD", "--arch", "all"],
         "bisect one arch at a time"),
        (["bisect", "--resume", "{tmp}/nosuch.json"], "--resume"),
    ],
)
def test_bisect_bad_input_exits_2_with_one_line(tmp_path: Path, args, complaint):
    from git_history import make_repo

    repo = make_repo(tmp_path / "repo", commits=3)
    args = [arg.format(tmp=tmp_path, repo=repo) for arg in args]
    result = gupvm(*args, "--cache-dir", str(tmp_path / "cache"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and complaint in lines[0], lines
    assert not (tmp_path / "out").exists()


def test_cells_lists_the_product_and_every_shard_has_its_share(tmp_path: Path):
    args = ["cells", "--json", "--kernel-src", "debian:6.1", "--kernel-src", "debian:6.12", "--arch", "all",
            "--plan", "smoke", "--plan", "hugepage"]
    every = json.loads(gupvm(*args, cwd=tmp_path).stdout)
    assert len(every) == 2 * 6 * 2 and every[0]["id"] == "debian-6.1/arm64/smoke" and every[0]["shard"] is None
    shards = [json.loads(gupvm(*args, "--shard", f"{index}/4", cwd=tmp_path).stdout) for index in (1, 2, 3, 4)]
    assert sorted(cell["id"] for shard in shards for cell in shard) == sorted(cell["id"] for cell in every)
    assert all(cell["shard"] == index for index, shard in enumerate(shards, 1) for cell in shard)
    plain = gupvm("cells", "--plan", "smoke", cwd=tmp_path)
    assert plain.stdout == "debian-6.1/x86_64/smoke\n"


def test_version(tmp_path: Path):
    result = gupvm("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("gupvm 0.")


def test_shell_without_a_terminal_says_so_and_starts_nothing(tmp_path: Path):
    result = subprocess.run([sys.executable, "-m", "orchestrator", "shell"], cwd=tmp_path, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "gupvm shell needs a terminal" in result.stderr
    assert not (tmp_path / "out").exists()


def test_a_shard_without_a_build_runs_nothing_and_exits_0(tmp_path: Path):
    result = gupvm("run", "--shard", "2/2", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "shard 2/2: 0 of 1 cells" in result.stdout
    (run_dir,) = (tmp_path / "out").iterdir()
    manifest = json.loads((run_dir / "cells.json").read_text())
    assert manifest["ran"] == [] and manifest["cells"][0]["id"] == "debian-6.1/x86_64/smoke"
    assert (run_dir / "junit.xml").is_file() and json.loads((run_dir / "results.json").read_text()) == []
