"""Where gupvm finds its own data and keeps its cache."""

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path


def _package_dir(package: str) -> Path:
    """A folder of data installed as a package: kconfigs/ and selftests/ of the checkout, in a wheel too."""
    return Path(str(files(package)))


ARCHES_DIR = _package_dir("orchestrator") / "arches"
KCONFIGS_DIR = _package_dir("orchestrator.kconfigs")
# Plans, the known failures, and gupvm's own workloads (C, built for the guest like the tree's selftests).
SELFTESTS_DIR = _package_dir("orchestrator.plans")


def default_cache_dir() -> Path:
    if "GUPVM_CACHE" in os.environ:
        return Path(os.environ["GUPVM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gupvm"


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on lock_file: one gupvm at a time unpacks or builds into a cache entry."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: a reader (a consumer of a report, a rerun of gupvm) never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


USED_STAMP = ".gupvm-used"


def mark_used(entry: Path) -> None:
    """Note that a cache entry (an unpacked tree, a build directory) was used now, for 'gupvm cache'."""
    if entry.is_dir():
        (entry / USED_STAMP).touch()


def find_program(name: str) -> str | None:
    """A program on PATH or in the system's sbin folders, which a normal user's PATH leaves out on Debian
    (mkfs.ext4 lives there)."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"]))
