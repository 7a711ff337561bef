"""The kernel source tree under test: where it is and what exactly it is.

gupvm never writes into a tree it is given. The identity computed here keys
every cache, so a change to the tree is always seen.
"""

import hashlib
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator import interrupt
from orchestrator.debian_archive import PrivateApt
from orchestrator.errors import InfrastructureError, UsageError
from orchestrator.gup_programs import program_kinds
from orchestrator.layout import Cache
from orchestrator.paths import exclusive, mark_used
from orchestrator.tools import disk_full_hint

DEFAULT_SOURCE = "debian:6.1"
DEBIAN_TARBALLS = Path("/usr/src")


@dataclass(frozen=True)
class KernelSource:
    path: Path
    identity: str  # what the report shows: where the tree came from and which state of it
    fingerprint: str  # a hash of that state, for cache keys
    slot: str  # stable across states of the same tree, so builds of it are incremental
    version: str  # VERSION.PATCHLEVEL.SUBLEVEL from the top Makefile

    @property
    def selftests_dir(self) -> Path:
        """tools/testing/selftests/vm in older trees, .../mm since 6.3: where the GUP test programs are."""
        sources = [kind.source for kind in program_kinds().values()]
        for name in ("mm", "vm"):
            candidate = self.path / "tools/testing/selftests" / name
            if any((candidate / source).is_file() for source in sources):
                return candidate
        raise UsageError(f"{self.path}: no gup_test.c or gup_benchmark.c under tools/testing/selftests/{{mm,vm}}")


def resolve(spec: str | None, cache_dir: Path) -> KernelSource:
    """A kernel source as given (a git checkout, an unpacked tree, debian:X.Y), with its identity and fingerprint."""
    spec = spec or DEFAULT_SOURCE
    if spec.startswith("debian:"):
        return _debian_source(spec.removeprefix("debian:"), cache_dir)
    return _user_tree(Path(spec).expanduser())


def _read_version(path: Path) -> str:
    text = (path / "Makefile").read_text(errors="replace")
    fields = {
        key: re.search(rf"^{key}\s*=\s*(\S*)", text, re.M) for key in ("VERSION", "PATCHLEVEL", "SUBLEVEL")
    }
    return ".".join(match.group(1) if match else "?" for match in fields.values())


def _debian_source(spec: str, cache_dir: Path) -> KernelSource:
    """debian:X.Y (the installed package, else the newest any suite has) or debian:X.Y=VERSION."""
    series, _, pinned = spec.partition("=")
    if not re.fullmatch(r"\d+\.\d+", series):
        raise UsageError(f"--kernel-src debian:{spec}: expected debian:X.Y or debian:X.Y=VERSION, e.g. debian:6.12")
    package = f"linux-source-{series}"
    installed_tarball = DEBIAN_TARBALLS / f"{package}.tar.xz"
    installed = _installed_version(package) if installed_tarball.is_file() else ""
    if installed and pinned in ("", installed):
        version, tarball = installed, installed_tarball
    else:
        version, tarball = _fetched_tarball(package, pinned, cache_dir)
    unpacked_root = Cache(cache_dir).sources / f"{package}_{version}"
    tree = unpacked_root / package
    with exclusive(unpacked_root.with_name(unpacked_root.name + ".lock")):
        if not (tree / "Makefile").is_file():
            _unpack(tarball, unpacked_root)
    mark_used(unpacked_root)
    fingerprint = hashlib.sha256(f"{package}={version}".encode()).hexdigest()[:16]
    return KernelSource(
        path=tree,
        identity=f"debian:{package} {version}",
        fingerprint=fingerprint,
        slot=f"debian-{series}",
        version=_read_version(tree),
    )


def _installed_version(package: str) -> str:
    result = interrupt.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else ""


def _fetched_tarball(package: str, pinned: str, cache_dir: Path) -> tuple[str, Path]:
    """The source tarball of package (pinned, or the newest any suite has), fetched once into the cache."""
    if pinned and (cached := _debian_tarball_path(cache_dir, package, pinned)).is_file():
        return pinned, cached
    apt = PrivateApt(cache_dir)
    apt.update()
    versions = apt.versions(package)
    if not versions:
        series = [name.removeprefix("linux-source-") for name in apt.packages("linux-source-")
                  if re.fullmatch(r"linux-source-\d+\.\d+", name)]
        raise UsageError(f"--kernel-src debian:{package.removeprefix('linux-source-')}: no Debian suite has "
                         f"{package}; there are: {', '.join(sorted(series, key=version_key))}")
    if pinned and pinned not in versions:
        raise UsageError(f"--kernel-src debian:{package.removeprefix('linux-source-')}={pinned}: no suite has "
                         f"that version of {package}; there are: {', '.join(versions)}")
    version = pinned or versions[0]
    tarball = _debian_tarball_path(cache_dir, package, version)
    with exclusive(tarball.with_name(tarball.name + ".lock")):
        if not tarball.is_file():
            scratch = tarball.with_name(tarball.name + ".partial")
            shutil.rmtree(scratch, ignore_errors=True)
            deb = apt.download(package, version, scratch)
            _extract_member(deb, f"./usr/src/{package}.tar.xz", scratch / "tarball")
            (scratch / "tarball").rename(tarball)
            shutil.rmtree(scratch)
    return version, tarball


def _debian_tarball_path(cache_dir: Path, package: str, version: str) -> Path:
    return Cache(cache_dir).tarballs / f"{package}_{version}.tar.xz"


def _extract_member(deb: Path, member: str, destination: Path) -> None:
    with destination.open("wb") as out:
        extract = interrupt.run(["bash", "-o", "pipefail", "-c", 'dpkg-deb --fsys-tarfile "$1" | tar -xO "$2"', "-",
                                 str(deb), member], stdout=out, stderr=subprocess.PIPE)
    if extract.returncode != 0:
        raise InfrastructureError(f"{deb}: cannot extract {member}: {extract.stderr.decode(errors='replace')}")


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _unpack(tarball: Path, destination: Path) -> None:
    """Unpack into a scratch folder and rename, so a half-unpacked tree is never used."""
    scratch = destination.with_name(destination.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    result = interrupt.run(["tar", "-xf", str(tarball), "-C", str(scratch)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)  # nothing half-unpacked left to fill the disk
        said = disk_full_hint(result.stderr) or ": " + " | ".join(result.stderr.strip().splitlines()[-2:])
        raise InfrastructureError(f"unpacking {tarball} into {destination} failed{said}")
    shutil.rmtree(destination, ignore_errors=True)
    scratch.rename(destination)


def check_tree(path: Path, flag: str = "--kernel-src") -> Path:
    """A tree given by path, refused before any work unless gupvm can build and test it; resolved."""
    if not path.is_dir():
        raise UsageError(
            f"{flag} {path}: no such directory; "
            "give the top of a Linux source tree, or debian:X.Y (e.g. debian:6.12)"
        )
    path = path.resolve()
    if not (path / "Kbuild").is_file() or not (path / "mm").is_dir():
        raise UsageError(f"{flag} {path}: not a Linux source tree (no Kbuild and mm/ at its top)")
    if not any((path / "mm" / name).is_file() for name in ("gup_test.c", "gup_benchmark.c")):
        raise UsageError(
            f"{flag} {path}: no mm/gup_test.c or mm/gup_benchmark.c; gupvm needs Linux 5.10 or newer"
        )
    if (path / ".config").exists() or (path / "include/config").exists():
        raise UsageError(
            f"{flag} {path}: the tree was configured in place, which out-of-tree builds refuse; "
            "run 'make mrproper' in it"
        )
    return path


def _user_tree(path: Path) -> KernelSource:
    path = check_tree(path)
    identity, fingerprint = _git_state(path) if (path / ".git").exists() else _stat_state(path)
    return KernelSource(
        path=path,
        identity=identity,
        fingerprint=fingerprint,
        slot="tree-" + hashlib.sha256(str(path).encode()).hexdigest()[:12],
        version=_read_version(path),
    )


def _git(path: Path, *args: str) -> bytes:
    # --no-optional-locks: reading the state must not rewrite the user's index.
    return interrupt.run(["git", "--no-optional-locks", "-C", str(path), *args], check=True, capture_output=True).stdout


def _git_state(path: Path) -> tuple[str, str]:
    head = _git(path, "rev-parse", "HEAD").decode().strip()
    # The tree, not the commit: a commit that restores a tree already built (a reverted or repaired
    # head, a rebase that changed only messages) finds that kernel in the cache.
    tree = _git(path, "rev-parse", "HEAD^{tree}").strip()
    changes = _git(path, "diff", "HEAD", "--binary")
    untracked = [name for name in _git(path, "ls-files", "--others", "--exclude-standard", "-z").split(b"\0") if name]
    fingerprint = _fingerprint(tree, changes, [name + (path / name.decode()).read_bytes() for name in untracked])
    dirty = f"+dirty-{fingerprint}" if changes or untracked else ""
    return f"git:{path}@{head[:12]}{dirty}", fingerprint


def commit_fingerprint(repository: Path, commit: str) -> str:
    """The fingerprint a clean checkout of commit has (what its kept kernels are named by)."""
    return _fingerprint(_git(repository, "rev-parse", f"{commit}^{{tree}}").strip())


def _fingerprint(tree: bytes, changes: bytes = b"", untracked: list[bytes] | None = None) -> str:
    digest = hashlib.sha256(tree + changes)
    for named_contents in untracked or []:
        digest.update(named_contents)
    return digest.hexdigest()[:16]


def _stat_state(path: Path) -> tuple[str, str]:
    """Without git, every file's name, size and mtime stand for its contents."""
    digest = hashlib.sha256()
    for directory, subdirs, files in os.walk(path):
        subdirs.sort()
        for name in sorted(files):
            full = os.path.join(directory, name)
            stat = os.lstat(full)
            digest.update(f"{os.path.relpath(full, path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    fingerprint = digest.hexdigest()[:16]
    return f"tree:{path}#{fingerprint}", fingerprint
