"""Source identity: every change to a tree changes its fingerprint, and reading it writes nothing."""

import subprocess
from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.source import commit_fingerprint, resolve


def make_tree(path: Path) -> Path:
    """The top of a source tree as gupvm inspects it (not a buildable kernel)."""
    (path / "mm").mkdir(parents=True)
    (path / "Kbuild").write_text("obj-y += mm/\n")
    (path / "mm/gup_test.c").write_text("/* gup_test */\n")
    (path / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\n")
    return path


def git(tree: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(tree), "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True,
                   capture_output=True)


def test_unpacked_tree_fingerprint_follows_its_files(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    first = resolve(str(tree), tmp_path / "cache")
    assert first.version == "6.13.0" and first.identity.startswith(f"tree:{tree}#")
    assert resolve(str(tree), tmp_path / "cache").fingerprint == first.fingerprint
    (tree / "mm/gup_test.c").write_text("/* gup_test, changed */\n")
    changed = resolve(str(tree), tmp_path / "cache")
    assert changed.fingerprint != first.fingerprint and changed.slot == first.slot


def test_git_tree_identity_is_head_plus_changes(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    git(tree, "init", "-q")
    git(tree, "add", ".")
    git(tree, "commit", "-qm", "base")
    head = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    clean = resolve(str(tree), tmp_path / "cache")
    assert clean.identity == f"git:{tree}@{head[:12]}"
    index = (tree / ".git/index").stat().st_mtime_ns
    (tree / "mm/gup.c").write_text("/* untracked */\n")
    untracked = resolve(str(tree), tmp_path / "cache")
    assert "+dirty-" in untracked.identity and untracked.fingerprint != clean.fingerprint
    (tree / "mm/gup.c").unlink()
    (tree / "mm/gup_test.c").write_text("/* modified */\n")
    modified = resolve(str(tree), tmp_path / "cache")
    assert "+dirty-" in modified.identity and modified.fingerprint not in (clean.fingerprint, untracked.fingerprint)
    assert (tree / ".git/index").stat().st_mtime_ns == index  # reading the state did not rewrite the index


def test_a_commit_that_restores_a_built_tree_has_its_fingerprint(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    git(tree, "init", "-q")
    git(tree, "add", ".")
    git(tree, "commit", "-qm", "base")
    base = resolve(str(tree), tmp_path / "cache")
    (tree / "mm/gup_test.c").write_text("/* broken */\n")
    git(tree, "commit", "-qam", "break")
    broken = resolve(str(tree), tmp_path / "cache")
    git(tree, "revert", "--no-edit", "HEAD")
    repaired = resolve(str(tree), tmp_path / "cache")
    assert broken.fingerprint != base.fingerprint
    assert repaired.fingerprint == base.fingerprint and repaired.identity != base.identity
    assert commit_fingerprint(tree, "HEAD~1") == broken.fingerprint  # without checking it out


def test_tree_configured_in_place_is_refused(tmp_path: Path):
    tree = make_tree(tmp_path / "linux")
    (tree / ".config").write_text("CONFIG_X=y\n")
    with pytest.raises(UsageError, match="make mrproper"):
        resolve(str(tree), tmp_path / "cache")


@pytest.mark.parametrize("spec, complaint", [
    ("/nonexistent", "no such directory"),
    ("debian:6", "expected debian:X.Y or debian:X.Y=VERSION"),
    ("debian:linux-6.1", "expected debian:X.Y or debian:X.Y=VERSION"),
])
def test_bad_sources_are_usage_errors(tmp_path: Path, spec: str, complaint: str):
    with pytest.raises(UsageError, match=complaint):
        resolve(spec, tmp_path / "cache")


@pytest.mark.e2e  # asks Debian's archive
@pytest.mark.parametrize("spec, complaint", [
    ("debian:9.99", r"no Debian suite has linux-source-9.99; there are: 5.10, .*6.1, .*7.\d"),
    ("debian:6.1=0.0-0", r"no suite has that version of linux-source-6.1; there are: 6.1.\d+"),
])
def test_kernels_no_suite_has_are_usage_errors_listing_those_that_exist(tmp_path: Path, spec: str, complaint: str):
    with pytest.raises(UsageError, match=complaint):
        resolve(spec, tmp_path / "cache")


def test_a_folder_that_is_not_a_kernel_tree(tmp_path: Path):
    with pytest.raises(UsageError, match="not a Linux source tree"):
        resolve(str(tmp_path), tmp_path / "cache")
    tree = make_tree(tmp_path / "old")
    (tree / "mm/gup_test.c").unlink()
    with pytest.raises(UsageError, match="Linux 5.10 or newer"):
        resolve(str(tree), tmp_path / "cache")
