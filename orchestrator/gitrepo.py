"""Git trees: refs, private worktrees, snapshots of uncommitted changes, bisection.

gupvm never changes a user's checkout: its HEAD, index, working files,
branches and tags. Everything that moves a HEAD (checkout, revert, bisect)
happens in a private `git worktree add --detach` under the cache, whose
HEAD and refs/bisect belong to it alone; git's bookkeeping of it is removed
when it is done with, and a worktree left by a killed run is cleaned up by
the next one (a worktree is in use exactly while its lock file is locked).
What stays between runs (a presubmit's checkout, for incremental builds) is
a clone that borrows the repository's objects, which leaves nothing behind
in the repository.
"""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator import interrupt
from orchestrator.errors import GupvmError, InfrastructureError, UsageError
from orchestrator.interrupt import handling_signals
from orchestrator.layout import Cache

# Commits gupvm makes (snapshots, reverts) carry its name, not the user's.
_IDENTITY = {
    "GIT_AUTHOR_NAME": "gupvm", "GIT_AUTHOR_EMAIL": "gupvm@localhost",
    "GIT_COMMITTER_NAME": "gupvm", "GIT_COMMITTER_EMAIL": "gupvm@localhost",
}
# No automatic gc or maintenance in the user's repository, no editor, no pager.
_QUIET = ("-c", "gc.auto=0", "-c", "maintenance.auto=false", "-c", "core.pager=cat", "-c", "advice.detachedHead=false")
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}) is the first bad commit", re.M)
_CANDIDATES = re.compile(r"The first bad commit could be any of:\n((?:[0-9a-f]{40}\n)+)")
_NOTHING_LEFT = "There are only 'skip'ped commits left to test."


class GitError(GupvmError):
    """A git command failed."""


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    author: str  # "Name <email>"

    @property
    def short(self) -> str:
        return self.sha[:12]


@dataclass(frozen=True)
class BisectPosition:
    """Where `git bisect` stands: a commit to test next, the first bad commit, or candidates."""

    next: str = ""
    first_bad: str = ""
    candidates: tuple[str, ...] = ()  # only skipped commits were left: any of these

    @property
    def done(self) -> bool:
        return not self.next


def git(path: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
        input_text: str | None = None) -> subprocess.CompletedProcess:
    """Run git in path; --no-optional-locks so that reading never rewrites an index."""
    result = interrupt.run(
        ["git", "--no-optional-locks", *_QUIET, "-C", str(path), *args],
        capture_output=True, text=True, env={**os.environ, "GIT_EDITOR": "true", **(env or {})},
        input=input_text, stdin=None if input_text is not None else subprocess.DEVNULL, cleanup=True,
    )
    if check and result.returncode != 0:
        raise GitError(f"git {' '.join(args)} in {path} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


class Repo:
    """A user's repository: only read, except git's own worktree bookkeeping and new objects."""

    def __init__(self, path: Path):
        path = Path(path).expanduser()
        top = git(path, "rev-parse", "--show-toplevel", check=False) if path.is_dir() else None
        if top is None or top.returncode != 0:
            raise UsageError(f"{path}: not a git checkout; give the top of a kernel git tree")
        self.path = Path(top.stdout.strip())

    def git(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return git(self.path, *args, **kwargs)

    def resolve(self, ref: str) -> str:
        result = self.git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
        if result.returncode != 0:
            raise UsageError(f"{ref!r} names no commit in {self.path}; give a branch, tag or commit id")
        return result.stdout.strip()

    def merge_base(self, first: str, second: str) -> str:
        return self.git("merge-base", first, second).stdout.strip()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    def commit_info(self, ref: str) -> CommitInfo:
        sha, subject, author = self.git("log", "-1", "--format=%H%x00%s%x00%an <%ae>", ref).stdout.strip().split("\0")
        return CommitInfo(sha, subject, author)

    def upstream(self) -> str | None:
        """The branch the current branch tracks, if it tracks one."""
        result = self.git("rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    def series(self, base: str, head: str) -> list[str]:
        """The commits of head not in base, oldest first."""
        return self.git("rev-list", "--reverse", f"{base}..{head}").stdout.split()

    def parent(self, ref: str) -> str:
        return self.resolve(f"{ref}^")

    def snapshot(self) -> str:
        """A commit of the working tree as it is (tracked changes and untracked, non-ignored files) on HEAD.

        HEAD itself when nothing is changed. Built in a scratch index, so the
        user's index, HEAD and refs are untouched; the commit is only an object.
        """
        head = self.resolve("HEAD")
        real_index = Path(self.git("rev-parse", "--path-format=absolute", "--git-path", "index").stdout.strip())
        with tempfile.TemporaryDirectory(prefix="gupvm-index-") as scratch:
            index = Path(scratch) / "index"
            if real_index.is_file():
                shutil.copyfile(real_index, index)  # its stat data saves rehashing unchanged files
            env = {"GIT_INDEX_FILE": str(index)}
            self.git("add", "--all", "--", ".", env=env)
            tree = self.git("write-tree", env=env).stdout.strip()
        if tree == self.git("rev-parse", "HEAD^{tree}").stdout.strip():
            return head
        message = f"gupvm: uncommitted changes of {self.path} on {head[:12]}"
        return self.git("commit-tree", tree, "-p", head, "-m", message, env=_IDENTITY).stdout.strip()


def worktrees_root(cache_dir: Path) -> Path:
    return Cache(cache_dir).worktrees


def _try_lock(lock_path: Path):
    """An open, exclusively locked file, or None if another process holds it."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


def clean_stale(repo: Repo, cache_dir: Path) -> list[Path]:
    """Remove gupvm worktrees no live process holds (left by killed runs); prune git's bookkeeping."""
    root = worktrees_root(cache_dir)
    removed = []
    for lock_path in sorted(root.glob("*.lock")) if root.is_dir() else []:
        directory = lock_path.with_suffix("")
        handle = _try_lock(lock_path)
        if handle is None:
            continue  # in use
        try:
            if directory.exists():
                shutil.rmtree(directory)
                removed.append(directory)
        finally:
            handle.close()
    repo.git("worktree", "prune")
    return removed


def _worktree_id(repo: Repo, purpose: str, slot: int) -> str:
    """Stable for a (repository, purpose): the same path, and so the same build directory, run after run."""
    digest = hashlib.sha256(str(repo.path).encode()).hexdigest()[:12]
    return f"{purpose}-{repo.path.name}-{digest}" + (f"-{slot}" if slot else "")


class Worktree:
    """A private, detached checkout of repo under the cache, with its own HEAD and refs/bisect."""

    def __init__(self, repo: Repo, path: Path, lock_handle):
        self.repo, self.path, self._lock = repo, path, lock_handle

    def git(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return git(self.path, *args, **kwargs)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def checkout(self, commit: str) -> None:
        """Only files that differ change, and keep their mtimes otherwise: builds stay incremental."""
        self.git("checkout", "--detach", "--force", commit)

    def revert(self, commit: str) -> bool:
        """Revert commit on top of HEAD here; False, leaving HEAD as it was, if it does not apply cleanly."""
        result = self.git("revert", "--no-edit", commit, env=_IDENTITY, check=False)
        if result.returncode != 0:
            self.git("revert", "--abort", check=False)
            self.git("reset", "--hard", "--quiet")
            return False
        return True

    # git bisect, driven here: refs/bisect are this worktree's own.
    def bisect_start(self, bad: str, good: str) -> BisectPosition:
        self.git("bisect", "reset", check=False)
        return self._bisect_state(self.git("bisect", "start", bad, good, env=_IDENTITY, check=False))

    def bisect_mark(self, verdict: str, commit: str) -> BisectPosition:
        """verdict: good, bad or skip."""
        if verdict not in ("good", "bad", "skip"):
            raise ValueError(verdict)
        return self._bisect_state(self.git("bisect", verdict, commit, check=False))

    def bisect_log(self) -> str:
        result = self.git("bisect", "log", check=False)
        return result.stdout if result.returncode == 0 else ""

    def bisect_replay(self, log: str) -> BisectPosition:
        """Continue a bisection from its `git bisect log`."""
        self.git("bisect", "reset", check=False)
        with tempfile.NamedTemporaryFile("w", prefix="gupvm-bisect-", suffix=".log") as handle:
            handle.write(log)
            handle.flush()
            return self._bisect_state(self.git("bisect", "replay", handle.name, check=False))

    def _bisect_state(self, result: subprocess.CompletedProcess) -> BisectPosition:
        text = result.stdout + result.stderr
        if found := _FIRST_BAD.search(text):
            return BisectPosition(first_bad=found.group(1))
        if _NOTHING_LEFT in text:
            candidates = _CANDIDATES.search(text + "\n")
            return BisectPosition(candidates=tuple(candidates.group(1).split()) if candidates else ())
        if result.returncode != 0:
            raise GitError(f"git bisect in {self.path} failed: {text.strip()}")
        return BisectPosition(next=self.head())


def _free_slot(root: Path, repo: Repo, purpose: str):
    """The first worktree path of (repository, purpose) under root that no running gupvm holds, locked."""
    for slot in range(100):
        path = root / _worktree_id(repo, purpose, slot)
        handle = _try_lock(path.with_name(path.name + ".lock"))
        if handle is not None:
            return path, handle
    raise InfrastructureError(f"{root}: 100 gupvm worktrees of {repo.path} are in use")


@contextmanager
def private_worktree(repo: Repo, cache_dir: Path, commit: str, purpose: str) -> Iterator[Worktree]:
    """A private worktree at commit; removed with git's bookkeeping of it on the way out, whatever happens.

    SIGINT, SIGTERM and SIGHUP unwind it as any gupvm command's do
    (interrupt.handling_signals), so a killed run cleans up; SIGKILL leaves a
    stale worktree that clean_stale removes next time.
    """
    clean_stale(repo, cache_dir)
    path, handle = _free_slot(worktrees_root(cache_dir), repo, purpose)
    with handling_signals(), handle:
        shutil.rmtree(path, ignore_errors=True)  # whatever an earlier run left there
        repo.git("worktree", "prune")
        result = repo.git("worktree", "add", "--detach", "--force", str(path), commit, check=False)
        if result.returncode != 0:
            raise InfrastructureError(f"git worktree add {path} failed: {result.stderr.strip()}")
        worktree = Worktree(repo, path, handle)
        try:
            yield worktree
        finally:
            # refs/bisect of a linked worktree live in its bookkeeping, removed with it.
            repo.git("worktree", "remove", "--force", "--force", str(path), check=False)
            shutil.rmtree(path, ignore_errors=True)
            repo.git("worktree", "prune", check=False)


def kept_checkouts_root(cache_dir: Path) -> Path:
    return Cache(cache_dir).kept_checkouts  # apart from private worktrees: clean_stale never removes these


@contextmanager
def kept_checkout(repo: Repo, cache_dir: Path, commit: str, purpose: str) -> Iterator[Worktree]:
    """A private checkout at commit that stays between runs, at a path stable per (repository, purpose).

    Its files keep their mtimes from run to run, and checkouts change only
    the files that differ, so the build directory of its path rebuilds only
    what a commit changed (a presubmit's head against its base). It is a
    clone that borrows the repository's objects (`git clone --shared`), not
    a worktree: it stays without leaving bookkeeping in the user's
    repository, and sees every commit made there since (snapshots included).
    """
    path, handle = _free_slot(kept_checkouts_root(cache_dir), repo, purpose)
    try:
        borrowed = path / ".git/objects/info/alternates"
        objects = Path(repo.git("rev-parse", "--path-format=absolute", "--git-common-dir").stdout.strip()) / "objects"
        if not (borrowed.is_file() and Path(borrowed.read_text().strip()) == objects):
            shutil.rmtree(path, ignore_errors=True)
            result = git(path.parent, "clone", "--quiet", "--shared", "--no-checkout", str(repo.path), str(path),
                         check=False)
            if result.returncode != 0:
                raise InfrastructureError(f"git clone --shared {repo.path} {path} failed: {result.stderr.strip()}")
        worktree = Worktree(repo, path, handle)
        worktree.checkout(commit)
        yield worktree
    finally:
        handle.close()
