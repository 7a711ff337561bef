"""gitrepo on small real repositories: the user's checkout is never changed, whatever happens."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from git_history import commit_file, make_repo, repo_state

from orchestrator.errors import UsageError
from orchestrator.gitrepo import Repo, clean_stale, kept_checkout, private_worktree, worktrees_root


def worktree_paths(repo: Repo) -> list[Path]:
    """The repository's registered worktrees, itself first."""
    listing = repo.git("worktree", "list", "--porcelain").stdout
    return [Path(line.removeprefix("worktree ")) for line in listing.splitlines() if line.startswith("worktree ")]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    path = make_repo(tmp_path / "user", commits=8)
    return Repo(path)


def test_resolve_and_commit_info(repo: Repo):
    head = repo.resolve("HEAD")
    assert len(head) == 40 and repo.resolve("main") == head
    info = repo.commit_info("HEAD~2")
    assert info.subject == "change 5" and info.author == "Dev Eloper <dev@example.org>"
    assert repo.parent("HEAD") == repo.resolve("HEAD~1")
    assert repo.merge_base("HEAD", "HEAD~3") == repo.resolve("HEAD~3")
    assert repo.is_ancestor("HEAD~3", "HEAD") and not repo.is_ancestor("HEAD", "HEAD~3")


def test_unknown_ref_and_non_repository_are_usage_errors(repo: Repo, tmp_path: Path):
    with pytest.raises(UsageError, match="'nosuch' names no commit"):
        repo.resolve("nosuch")
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match="not a git checkout"):
        Repo(tmp_path / "plain")


def test_worktree_checkout_revert_and_removal_leave_the_user_alone(repo: Repo, tmp_path: Path):
    (repo.path / "file3.txt").write_text("user's uncommitted edit\n")
    (repo.path / "untracked.txt").write_text("new\n")
    before = repo_state(repo.path)
    cache = tmp_path / "cache"
    with private_worktree(repo, cache, repo.resolve("HEAD~4"), "test") as worktree:
        assert worktree.path.parent == worktrees_root(cache)
        assert worktree.head() == repo.resolve("HEAD~4")
        assert (worktree.path / "file3.txt").read_text() == "3\n"
        worktree.checkout(repo.resolve("HEAD"))
        assert worktree.revert(repo.resolve("HEAD~1"))  # change 6 touched only file6
        assert not (worktree.path / "file6.txt").exists() and (worktree.path / "file7.txt").exists()
        assert repo.commit_info(worktree.head()).subject.startswith('Revert "change 6"')
        during = repo_state(repo.path)
        assert str(worktree.path) in during.pop("worktrees")
        assert during == {key: value for key, value in before.items() if key != "worktrees"}
    assert not worktree.path.exists()
    assert repo_state(repo.path) == before
    assert worktree_paths(repo) == [repo.path]


def test_a_revert_that_conflicts_is_refused_and_leaves_head(repo: Repo, tmp_path: Path):
    commit_file(repo.path, "file1.txt", "rewritten\n", "rewrite file1")
    commit_file(repo.path, "file1.txt", "rewritten again\n", "rewrite file1 again")
    with private_worktree(repo, tmp_path / "cache", repo.resolve("HEAD"), "test") as worktree:
        head = worktree.head()
        assert not worktree.revert(repo.resolve("HEAD~1"))
        assert worktree.head() == head
        assert worktree.git("status", "--porcelain").stdout == ""


def test_snapshot_captures_tracked_and_untracked_changes_without_touching_the_index(repo: Repo):
    assert repo.snapshot() == repo.resolve("HEAD")  # clean: HEAD itself
    (repo.path / "file2.txt").write_text("edited\n")
    (repo.path / "file4.txt").unlink()
    (repo.path / "brand-new.c").write_text("int x;\n")
    (repo.path / ".gitignore").write_text("*.o\n")
    (repo.path / "ignored.o").write_text("object\n")
    subprocess.run(["git", "-C", str(repo.path), "add", "file2.txt"], check=True)  # something staged too
    before = repo_state(repo.path)
    snapshot = repo.snapshot()
    assert repo_state(repo.path) == before
    assert repo.parent(snapshot) == repo.resolve("HEAD")
    files = set(repo.git("ls-tree", "--name-only", snapshot).stdout.split())
    assert {"brand-new.c", ".gitignore", "file2.txt"} <= files
    assert "file4.txt" not in files and "ignored.o" not in files
    assert repo.git("show", f"{snapshot}:file2.txt").stdout == "edited\n"


def test_bisect_in_a_worktree_finds_the_first_bad_commit(repo: Repo, tmp_path: Path):
    commits = repo.git("rev-list", "--reverse", "HEAD").stdout.split()
    culprit = commits[5]
    before = repo_state(repo.path)
    with private_worktree(repo, tmp_path / "cache", commits[-1], "test") as worktree:
        state = worktree.bisect_start(commits[-1], commits[0])
        steps = 0
        while not state.done:
            steps += 1
            bad = repo.is_ancestor(culprit, state.next)
            state = worktree.bisect_mark("bad" if bad else "good", state.next)
        assert state.first_bad == culprit and steps <= 3
        assert "git bisect start" in worktree.bisect_log()
        assert repo.git("for-each-ref", "refs/bisect").stdout == ""  # per worktree
    assert repo_state(repo.path) == before


def test_skips_next_to_the_culprit_give_candidates_and_replay_resumes(repo: Repo, tmp_path: Path):
    commits = repo.git("rev-list", "--reverse", "HEAD").stdout.split()
    culprit, unbuildable = commits[5], commits[4]
    with private_worktree(repo, tmp_path / "cache", commits[-1], "test") as worktree:
        state = worktree.bisect_start(commits[-1], commits[0])
        first = state.next
        state = worktree.bisect_mark("bad" if repo.is_ancestor(culprit, first) else "good", first)
        log = worktree.bisect_log()
        replayed = worktree.bisect_replay(log)
        assert replayed.next == state.next
        while not state.done:
            if state.next == unbuildable:
                verdict = "skip"
            else:
                verdict = "bad" if repo.is_ancestor(culprit, state.next) else "good"
            state = worktree.bisect_mark(verdict, state.next)
        assert not state.first_bad
        assert set(state.candidates) == {unbuildable, culprit}


def test_adjacent_endpoints_name_the_bad_one_at_once(repo: Repo, tmp_path: Path):
    with private_worktree(repo, tmp_path / "cache", repo.resolve("HEAD"), "test") as worktree:
        state = worktree.bisect_start(repo.resolve("HEAD"), repo.resolve("HEAD~1"))
        assert state.first_bad == repo.resolve("HEAD")


def test_an_exception_inside_still_removes_the_worktree(repo: Repo, tmp_path: Path):
    before = repo_state(repo.path)
    with pytest.raises(KeyboardInterrupt):
        with private_worktree(repo, tmp_path / "cache", repo.resolve("HEAD~2"), "test") as worktree:
            worktree.bisect_start(repo.resolve("HEAD"), repo.resolve("HEAD~7"))
            raise KeyboardInterrupt
    assert not worktree.path.exists()
    assert worktree_paths(repo) == [repo.path]
    assert repo_state(repo.path) == before


def test_a_second_worktree_of_the_same_purpose_gets_its_own_path(repo: Repo, tmp_path: Path):
    cache = tmp_path / "cache"
    with private_worktree(repo, cache, repo.resolve("HEAD"), "test") as first:
        with private_worktree(repo, cache, repo.resolve("HEAD~1"), "test") as second:
            assert first.path != second.path
            assert first.head() != second.head()
    with private_worktree(repo, cache, repo.resolve("HEAD"), "test") as again:
        assert again.path == first.path  # stable: the same build directory next time


_HOLD_WORKTREE = """
import sys, time
sys.path.insert(0, sys.argv[3])
from pathlib import Path
from orchestrator.gitrepo import Repo, private_worktree
repo = Repo(Path(sys.argv[1]))
with private_worktree(repo, Path(sys.argv[2]), repo.resolve("HEAD~3"), "test") as worktree:
    repo.git("-C", str(worktree.path), "bisect", "start", "HEAD", "HEAD~2")
    print(worktree.path, flush=True)
    time.sleep(60)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_terminated_run_cleans_up(repo: Repo, tmp_path: Path, signum):
    before = repo_state(repo.path)
    root = Path(__file__).resolve().parent.parent
    child = subprocess.Popen([sys.executable, "-c", _HOLD_WORKTREE, str(repo.path), str(tmp_path / "cache"),
                              str(root)], stdout=subprocess.PIPE, text=True)
    path = Path(child.stdout.readline().strip())
    assert path.is_dir()
    child.send_signal(signum)
    child.wait(timeout=30)
    assert not path.exists()
    assert worktree_paths(repo) == [repo.path]
    assert repo_state(repo.path) == before


def test_a_killed_run_is_cleaned_up_by_the_next(repo: Repo, tmp_path: Path):
    before = repo_state(repo.path)
    root = Path(__file__).resolve().parent.parent
    cache = tmp_path / "cache"
    child = subprocess.Popen([sys.executable, "-c", _HOLD_WORKTREE, str(repo.path), str(cache), str(root)],
                             stdout=subprocess.PIPE, text=True)
    path = Path(child.stdout.readline().strip())
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert path.is_dir() and len(worktree_paths(repo)) == 2  # left behind
    time.sleep(0.1)
    assert clean_stale(repo, cache) == [path]
    assert not path.exists()
    assert worktree_paths(repo) == [repo.path]
    assert repo_state(repo.path) == before


def test_a_kept_checkout_stays_touches_only_what_differs_and_leaves_the_repository_as_it_was(repo: Repo,
                                                                                            tmp_path: Path):
    before = repo_state(repo.path)
    cache = tmp_path / "cache"
    with kept_checkout(repo, cache, repo.resolve("HEAD~3"), "presubmit") as checkout:
        path = checkout.path
        stamps = {name: (path / name).stat().st_mtime_ns for name in ("file0.txt", "file3.txt")}
        time.sleep(0.05)
    clean_stale(repo, cache)  # a private worktree's cleanup leaves kept checkouts alone
    (repo.path / "new.txt").write_text("an uncommitted file\n")
    snapshot = repo.snapshot()  # made after the clone: seen through the borrowed objects
    with kept_checkout(repo, cache, snapshot, "presubmit") as again:
        assert again.path == path and again.head() == snapshot
        assert (path / "new.txt").read_text() == "an uncommitted file\n"
        assert (path / "file0.txt").stat().st_mtime_ns == stamps["file0.txt"]
        assert (path / "file3.txt").stat().st_mtime_ns == stamps["file3.txt"]
        assert (path / "file7.txt").is_file()
    (repo.path / "new.txt").unlink()
    assert worktree_paths(repo) == [repo.path]
    assert repo_state(repo.path) == before


def test_upstream_and_series(repo: Repo):
    assert repo.upstream() is None
    assert repo.series(repo.resolve("HEAD~3"), "HEAD") == [repo.resolve(f"HEAD~{n}") for n in (2, 1, 0)]
    subprocess.run(["git", "-C", str(repo.path), "branch", "-q", "--set-upstream-to", "v0"], check=False)
    subprocess.run(["git", "-C", str(repo.path), "checkout", "-q", "-b", "topic", "--track", "main"], check=True)
    assert repo.upstream() == "main"
