"""Checks of the command line's options, made before anything is unpacked, built or booted.

Every place a run writes to is proven writable up front, so a run never
ends, after an hour of building and booting, unable to write its results.
"""

import math
import os
import shutil
import tempfile
from pathlib import Path

from orchestrator import doctor
from orchestrator.errors import InfrastructureError, UsageError, shown

MAX_JOBS = 1024
MAX_SECONDS = 7 * 24 * 3600.0
# Kbuild refuses a source or output directory whose path has spaces or colons.
_KBUILD_UNSAFE = (" ", ":", "\t", "\n")
MIN_FREE_GIB = 3.0  # a tinyconfig-based build, the unpacked Debian tree and the guest programs


def positive_seconds(option: str, value: float) -> None:
    if not (math.isfinite(value) and 0 < value <= MAX_SECONDS):
        raise UsageError(f"{option} {value}: give a number of seconds above 0 and at most {MAX_SECONDS:.0f}")


def jobs(value: int) -> None:
    if not 1 <= value <= MAX_JOBS:
        raise UsageError(f"--jobs {value}: give a number of jobs from 1 to {MAX_JOBS}")


def kbuild_safe(option: str, path: Path) -> None:
    if any(char in str(path.absolute()) for char in _KBUILD_UNSAFE):
        raise UsageError(f"{option} {shown(path)}: Kbuild refuses paths with spaces or colons; "
                         "use a path without them")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _can_write_below(option: str, path: Path, directory: Path, fix: str) -> None:
    """directory, or the nearest folder above it that exists, takes a new entry (a probe, removed at once)."""
    existing = _nearest_existing(directory)
    if not existing.is_dir():
        raise UsageError(f"{option} {shown(path)}: {existing} is not a directory; {fix}")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".gupvm-probe-", dir=existing))
    except OSError as error:
        raise UsageError(f"{option} {shown(path)}: cannot write in {existing} ({error.strerror}); {fix}") from None


def writable_directory(option: str, path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {shown(path)}: exists and is not a directory; give a directory")
    _can_write_below(option, path, path, "give a directory you can write to")


def writable_file(option: str, path: Path) -> None:
    if path.is_dir() or str(path).endswith("/"):
        raise UsageError(f"{option} {shown(path)}: is a directory; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {shown(path)}: not writable; give a file you can write")
    _can_write_below(option, path, path.parent, "give a file in a directory you can write to")


def host_tools(arches, boots: bool) -> None:
    """The tools a run will start, there before it starts: not found half-way through."""
    wanted = list(doctor.BUILD_TOOLS) + [tool for arch in arches for tool in arch.host_tools(boots)]
    for tool, package in wanted:
        if shutil.which(tool) is None:
            raise InfrastructureError(f"{tool} not found on PATH: install it with 'apt-get install {package}' "
                                      "(or run ci/setup-debian.sh)")


def free_disk(cache_dir: Path) -> None:
    """Enough room for a build: a disk that fills in the middle of one is a long way to find out."""
    needed_gib = float(os.environ.get("GUPVM_MIN_FREE_GIB", MIN_FREE_GIB))
    free_gib = shutil.disk_usage(_nearest_existing(cache_dir)).free / 2**30
    if free_gib < needed_gib:
        raise InfrastructureError(
            f"only {free_gib:.1f} GiB free for the cache in {cache_dir}, a run needs about {needed_gib:.0f} GiB; "
            "free some space or give another --cache-dir"
        )
