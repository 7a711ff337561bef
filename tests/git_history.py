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
