"""gupvm cache: what the cache holds, and pruning what has not been used for a while.

Unpacked trees and their build directories take gigabytes each. An entry's
last use is the time of its use stamp (written each time a run uses it), or
else its own mtime. An entry that a running gupvm holds the lock of is left
alone.
"""

import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.layout import Cache
from orchestrator.paths import USED_STAMP


@dataclass(frozen=True)
class CacheEntry:
    kind: str  # what a user calls it
    path: Path
    size: int
    last_used: float

    @property
    def lock(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _last_used(path: Path) -> float:
    stamp = path / USED_STAMP
    return (stamp if stamp.is_file() else path).stat().st_mtime


def entries(cache_dir: Path) -> list[CacheEntry]:
    found = []
    cache = Cache(cache_dir)
    for folder, kind in cache.entry_folders().items():
        if folder == cache.apt:  # one entry as a whole
            children = [folder] if folder.is_dir() else []
        else:
            children = sorted(child for child in folder.iterdir() if not child.name.endswith(".lock")) \
                if folder.is_dir() else []
        found += [CacheEntry(kind, child, _size(child), _last_used(child)) for child in children]
    return found


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def listing(cache_dir: Path, now: float | None = None) -> str:
    now = now or time.time()
    found = entries(cache_dir)
    lines = [f"{'kind':<24} {'size':>10}  {'last used':>10}  entry"]
    for entry in found:
        days = (now - entry.last_used) / 86400
        lines.append(f"{entry.kind:<24} {_human(entry.size):>10}  {days:>8.1f} d  {entry.path}")
    lines.append(f"{len(found)} entries, {_human(sum(entry.size for entry in found))} in {cache_dir}")
    return "\n".join(lines)


def prune(cache_dir: Path, older_than_days: float, now: float | None = None) -> tuple[list[CacheEntry], list[Path]]:
    """Remove entries not used for older_than_days; returns what was removed and what was busy."""
    now = now or time.time()
    removed, busy = [], []
    for entry in entries(cache_dir):
        if now - entry.last_used < older_than_days * 86400:
            continue
        with entry.lock.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                busy.append(entry.path)
                continue
            if entry.path.is_dir():
                shutil.rmtree(entry.path)
            else:
                entry.path.unlink()
        entry.lock.unlink(missing_ok=True)
        removed.append(entry)
    return removed, busy


def run(cache_dir: Path, action: str, older_than_days: float) -> int:
    """gupvm cache: list the entries, or prune those not used for a while (a busy one is kept)."""
    if action == "list":
        print(listing(cache_dir))
        return 0
    removed, busy = prune(cache_dir, older_than_days)
    for entry in removed:
        print(f"removed {entry.kind} {entry.path} ({_human(entry.size)})")
    for path in busy:
        print(f"kept {path}: a running gupvm holds it")
    print(f"gupvm cache: freed {_human(sum(entry.size for entry in removed))}, "
          f"{len(removed)} entries not used for {older_than_days:g} days")
    return 0
