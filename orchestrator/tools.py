"""Running the external tools gupvm drives (make, the compiler, apt)."""

import os
import re
import subprocess
from pathlib import Path

from orchestrator import interrupt
from orchestrator.errors import HOST_TROUBLE, Blame, InfrastructureError

CCACHE_WRAPPERS = Path("/usr/lib/ccache")

# Fixed build identity: the same tree and config give the same objects, so
# ccache hits across cache directories and reruns.
_REPRODUCIBLE_BUILD_ENV = {
    "KBUILD_BUILD_TIMESTAMP": "1970-01-01",
    "KBUILD_BUILD_USER": "gupvm",
    "KBUILD_BUILD_HOST": "gupvm",
    "LC_ALL": "C",
}

_COMPILER_ERROR = re.compile(r"\berror:|undefined reference to|fatal error")
_MAKE_FAILURE = re.compile(r"^make(\[\d+\])?: \*\*\*")
_KBUILD_PROGRESS = re.compile(r"^  [A-Z0-9_]+ +\S")  # "  CC      mm/gup.o"


def build_env() -> dict[str, str]:
    env = dict(os.environ, **_REPRODUCIBLE_BUILD_ENV)
    if CCACHE_WRAPPERS.is_dir():
        env["PATH"] = f"{CCACHE_WRAPPERS}:{env.get('PATH', '')}"
    return env


def first_error_lines(log_text: str, count: int = 8) -> list[str]:
    """The compiler's error lines or, failing those, what a tool said just before make gave up."""
    lines = log_text.splitlines()
    errors = [line for line in lines if _COMPILER_ERROR.search(line)]
    if errors:
        return errors[:count]
    for number, line in enumerate(lines):
        if _MAKE_FAILURE.match(line):
            said = [earlier for earlier in lines[max(0, number - 3):number]
                    if not _KBUILD_PROGRESS.match(earlier) and not earlier.startswith(("make", "$ "))]
            return (said + [line])[:count]
    return []


def run_logged(argv: list[str], *, what: str, log: Path, cwd: Path | None = None, background: bool = False) -> None:
    """Run argv with its output appended to log; on failure raise with the first error lines.

    background: at the lowest CPU priority, so it fills the cores the kernel build leaves idle.
    """
    if background:
        argv = ["nice", "-n", "19", *argv]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as log_file:
        log_file.write(f"$ {' '.join(argv)}\n")
        log_file.flush()
        result = interrupt.run(
            argv, cwd=cwd, env=build_env(), stdout=log_file, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    if result.returncode != 0:
        text = log.read_text(errors="replace")
        errors = first_error_lines(text)
        # No error line: the tool was killed or the host failed it; error lines of the host's trouble likewise.
        blame = Blame.KERNEL if errors and not HOST_TROUBLE.search("\n".join(errors)) else Blame.HOST
        raise InfrastructureError(
            f"{what} failed (exit {result.returncode}){disk_full_hint(text)}; full log: {log}\n  "
            + "\n  ".join(errors or ["(no error line found)"]), blame)


def disk_full_hint(output: str) -> str:
    """What a tool that ran out of disk should be reported as: not its hundredth 'cannot write'."""
    if "No space left on device" not in output:
        return ""
    return ": the disk is full (No space left on device); free some space or give another --cache-dir"
