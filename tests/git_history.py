"""Real git histories for tests: small ones of text files, and kernel ones made from Debian's tree."""

import os
import subprocess
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
    return {
        "head": run_git(path, "rev-parse", "HEAD").strip(),
        "symbolic": run_git(path, "symbolic-ref", "-q", "HEAD").strip(),
        "refs": run_git(path, "for-each-ref", "--format=%(refname) %(objectname)"),
        "status": run_git(path, "status", "--porcelain=v1", "--untracked-files=all", "--ignored"),
        "diff": run_git(path, "diff", "HEAD", "--binary"),
        "staged": run_git(path, "diff", "--cached", "--binary"),
        "index": index.read_bytes().hex() if index.is_file() else "",
    }


# Fixed dates: the same tree and edits give the same commits, so a kernel kept
# for a commit by an earlier run is found again.
_FIXED_DATES = {"GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z"}


def _kernel_git(path: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "core.looseCompression=1", "-C", str(path), *args], check=True,
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


def make_kernel_history(path: Path, tree: Path, branches: dict[str, list[tuple[str, str, str, str]]]) -> Path:
    """A kernel repository: main is one commit of tree (tagged base); each branch adds its edits on main.

    branches: name -> [(file, old, new, subject), ...]. Made once per path: a repository already there
    with the same commits is reused as it is (its kept worktree and builds with it).
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
