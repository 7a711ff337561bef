"""The command line's promises about bad input: exit 2 and one clear line, nothing started."""

import subprocess
import sys
from pathlib import Path

import pytest


def gupvm(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=cwd, capture_output=True, text=True)


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
