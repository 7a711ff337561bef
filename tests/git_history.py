"""Real git histories for tests: small ones of text files, and kernel ones made from Debian's tree."""

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

AUTHOR_ENV = {
    "GIT_AUTHOR_NAME": "Dev Eloper", "GIT_AUTHOR_EMAIL": "dev@example.org",
    "GIT_COMMITTER_NAME": "Dev Eloper", "GIT_COMMITTER_EMAIL": "dev@example.org",
}


def run_git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(path), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **AUTHOR_ENV}).stdout


def commit_file(path: Path, name: str, content: str, subject: str) -> str:
    (path / name).parent.mkdir(parents=True, exist_ok=True)
    (path / name).write_text(content)
    run_git(path, "add", "-f", name)
    run_git(path, "commit", "-q", "-m", subject)
    return run_git(path, "rev-parse", "HEAD").strip()


def make_repo(path: Path, commits: int) -> Path:
    """A repository on branch main with a tag v0: commit i adds file<i>.txt ("change i")."""
    path.mkdir(parents=True)
    run_git(path, "init", "-q", "-b", "main")
    for number in range(commits):
        commit_file(path, f"file{number}.txt", f"{number}\n", f"change {number}")
        if number == 0:
            run_git(path, "tag", "v0")
    return path


def repo_state(path: Path) -> dict[str, str]:
    """Everything of a checkout gupvm promises not to change."""
    git_dir = Path(run_git(path, "rev-parse", "--absolute-git-dir").strip())
    index = git_dir / "index"
    # --no-optional-locks: looking must not refresh the index it then compares.
    return {
        "head": run_git(path, "rev-parse", "HEAD").strip(),
        "symbolic": run_git(path, "symbolic-ref", "-q", "HEAD").strip(),
        "refs": run_git(path, "for-each-ref", "--format=%(refname) %(objectname)"),
        "status": run_git(path, "--no-optional-locks", "status", "--porcelain=v1", "--untracked-files=all",
                          "--ignored"),
        # --full-index: an abbreviated object name grows with the number of objects (a gc changes it).
        "diff": run_git(path, "--no-optional-locks", "diff", "HEAD", "--binary", "--full-index"),
        "staged": run_git(path, "--no-optional-locks", "diff", "--cached", "--binary", "--full-index"),
        "index": index.read_bytes().hex() if index.is_file() else "",
        "worktrees": run_git(path, "worktree", "list", "--porcelain"),
    }


# Small edits spread over mm/ and the rest of the tree: comments, so each rebuilds at most one object.
_EDITED_FILES = (
    "mm/gup.c", "Documentation/core-api/pin_user_pages.rst", "mm/memory.c", "kernel/fork.c", "mm/util.c",
    "lib/string.c", "mm/mmap.c", "init/main.c", "mm/page_alloc.c", "fs/exec.c", "mm/swap.c", "README",
    "mm/huge_memory.c", "kernel/exit.c", "mm/hugetlb.c", "lib/bitmap.c",
)
_LEAK = ("\t\tunpin_user_pages(pages, nr_pages);\n\t\tbreak;", "\t\tunpin_user_pages(pages, nr_pages - 1);\n\t\tbreak;")
_BUILD_ERROR = "\nint gupvm_synthetic_build_error = ;\n"


@dataclass(frozen=True)
class KernelHistory:
    path: Path
    commits: tuple[str, ...]  # oldest first: commits[0] is the unchanged tree
    breaking: str  # gup_test.c leaks one pin per pin call from here on ("" if none)
    unbuildable: str  # mm/gup.c does not compile here; the next commit fixes it ("" if none)


def debian_tree() -> Path:
    """Debian's 6.1 tree as gupvm unpacks it into its cache."""
    from orchestrator.paths import default_cache_dir
    from orchestrator.source import resolve

    return resolve("debian:6.1", default_cache_dir()).path


def replace_file(path: Path, text: str) -> None:
    """A new file in place of the old: the tree is hard-linked to gupvm's cache, which must never change."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as scratch:
        scratch.write(text)
    os.chmod(scratch.name, path.stat().st_mode)
    os.replace(scratch.name, path)


def make_kernel_history(path: Path, changes: int = 16, breaking_at: int | None = 12,
                        unbuildable_at: int | None = 8) -> KernelHistory:
    """Debian's 6.1 tree as a first commit, then `changes` small commits over mm/ and elsewhere.

    Commit breaking_at makes gup_test.c unpin one page too few (nr_foll_pin_released lags acquired by
    one per pin call: the balance check fails every time); commit unbuildable_at adds a compile error to
    mm/gup.c, which the next commit removes. With 16 changes, git's first midpoint is commit 8.
    """
    subprocess.run(["cp", "-al", str(debian_tree()), str(path)], check=True)
    run_git(path, "init", "-q", "-b", "master")
    run_git(path, "add", "-f", "-A", ".")  # Debian's .gitignore ignores everything
    run_git(path, "commit", "-q", "-m", "Linux 6.1 as Debian ships it")
    commits, breaking, unbuildable = [run_git(path, "rev-parse", "HEAD").strip()], "", ""
    for number in range(1, changes + 1):
        if number == breaking_at:
            target = path / "mm/gup_test.c"
            text = target.read_text()
            assert _LEAK[0] in text
            replace_file(target, text.replace(*_LEAK, 1))
            subject = "mm/gup_test: unpin one page too few"
        elif number == unbuildable_at:
            target = path / "mm/gup.c"
            replace_file(target, target.read_text() + _BUILD_ERROR)
            subject = "mm/gup: a change that does not compile"
        elif unbuildable_at and number == unbuildable_at + 1:
            target = path / "mm/gup.c"
            replace_file(target, target.read_text().replace(_BUILD_ERROR, ""))
            subject = "mm/gup: fix the build"
        else:
            target = path / _EDITED_FILES[number % len(_EDITED_FILES)]
            replace_file(target, target.read_text() + f"\n/* synthetic history: change {number} */\n")
            subject = f"{target.relative_to(path).parts[0]}: synthetic change {number}"
        run_git(path, "add", "-f", str(target.relative_to(path)))
        run_git(path, "commit", "-q", "-m", subject)
        commits.append(run_git(path, "rev-parse", "HEAD").strip())
        if number == breaking_at:
            breaking = commits[-1]
        if number == unbuildable_at:
            unbuildable = commits[-1]
    return KernelHistory(path, tuple(commits), breaking, unbuildable)


# Fixed dates: the same tree and edits give the same commits, so a kernel kept
# for a commit by an earlier run is found again.
_FIXED_DATES = {"GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def _kernel_git(path: Path, *args: str) -> str:
    # gc.auto=0: no gc left packing the repository in the background while a test compares its state.
    return subprocess.run(["git", "-c", "core.looseCompression=1", "-c", "gc.auto=0", "-C", str(path), *args],
                          check=True,
                          capture_output=True, text=True, env={**os.environ, **AUTHOR_ENV, **_FIXED_DATES}).stdout


def edit_and_commit(path: Path, name: str, old: str, new: str, subject: str) -> str:
    """Replace old by new in one file and commit it. The file is written anew: the tree's files may be hard
    links to an unpacked source that must stay as it is."""
    file = path / name
    text = file.read_text()
    if old not in text:
        raise ValueError(f"{name}: {old!r} not found")
    file.unlink()
    file.write_text(text.replace(old, new, 1))
    _kernel_git(path, "add", name)
    _kernel_git(path, "commit", "-q", "-m", subject)
    return _kernel_git(path, "rev-parse", "HEAD").strip()


def make_kernel_branches(path: Path, tree: Path, branches: dict[str, list[tuple[str, str, str, str]]]) -> Path:
    """A kernel repository: main is one commit of tree (tagged base); each branch adds its edits on main.

    branches: name -> [(file, old, new, subject), ...]. Made once per path: a repository already there
    with the same commits is reused as it is (its kept checkout and builds with it).
    """
    if not (path / ".git").is_dir():
        scratch = path.with_name(path.name + ".partial")
        subprocess.run(["rm", "-rf", str(scratch)], check=True)
        scratch.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-al", str(tree), str(scratch)], check=True)  # hard links: fast, no space
        ignore = scratch / ".gitignore"  # Debian's ignores everything at the top but debian/: as upstream's
        text = ignore.read_text()
        ignore.unlink()
        ignore.write_text(text.split("\n#\n# Debian packaging")[0] + "\n")
        _kernel_git(scratch, "init", "-q", "-b", "main")
        _kernel_git(scratch, "add", "-A")
        _kernel_git(scratch, "commit", "-q", "-m", "base: the unpacked source")
        _kernel_git(scratch, "tag", "base")
        scratch.rename(path)
    _kernel_git(path, "checkout", "-q", "--force", "main")
    for name, edits in branches.items():
        _kernel_git(path, "checkout", "-q", "--force", "-B", name, "main")
        for file, old, new, subject in edits:
            edit_and_commit(path, file, old, new, subject)
    _kernel_git(path, "checkout", "-q", "--force", "main")
    return path
