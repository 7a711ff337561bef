"""Debian's archive, reached through a private apt state in gupvm's cache.

Kernel sources (linux-source-X.Y) of every suite from oldoldstable to
experimental, and each guest arch's busybox-static and static libraries, come from the
archive the host already uses. The host's apt configuration, lists and
installed packages are never touched: apt runs with its own sources list,
lists, cache and an empty dpkg status, all under the cache directory.
"""

import functools
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator import interrupt
from orchestrator.arches import all_arches
from orchestrator.errors import InfrastructureError, UsageError
from orchestrator.layout import Cache
from orchestrator.paths import exclusive

HOST_SOURCES = Path("/etc/apt")
DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
# Looked in for kernel sources: every suite that carries a linux-source in
# the supported range, security updates included. Suites the archive no
# longer (or not yet) serves are skipped by apt with a warning.
SUITES = ("bullseye", "bookworm", "bookworm-backports", "trixie", "trixie-backports", "forky", "sid",
          "experimental")
SECURITY_SUITES = ("bullseye-security", "bookworm-security", "trixie-security")
HOST_DEB_ARCH = "amd64"  # the lists apt reads for the kernel sources, which are Architecture: all
LISTS_MAX_AGE_SECONDS = 3600  # experimental moves on; an hour-old view of it is fresh enough


@dataclass(frozen=True)
class ArchiveSource:
    """Where the host gets Debian's packages from, as its own apt sources say."""

    uri: str
    keyring: str


@dataclass(frozen=True)
class HostArchives:
    main: ArchiveSource
    security: ArchiveSource | None


def _stanzas(root: Path) -> list[dict[str, str]]:
    """Every enabled 'deb' entry of the host's apt sources, one-line and deb822 alike."""
    entries: list[dict[str, str]] = []
    one_line = [root / "sources.list", *sorted((root / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$", line)
            if not match:
                continue
            options = dict(option.split("=", 1) for option in (match.group(1) or "").split() if "=" in option)
            entries.append({"uri": match.group(2), "suites": match.group(3), "components": match.group(4),
                            "signed-by": options.get("signed-by", "")})
    for path in sorted((root / "sources.list.d").glob("*.sources")):
        for block in re.split(r"\n\s*\n", path.read_text(errors="replace")):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                for uri in fields.get("uris", "").split():
                    entries.append({"uri": uri, "suites": fields.get("suites", ""),
                                    "components": fields.get("components", ""),
                                    "signed-by": fields.get("signed-by", "")})
    return entries


def host_archives(root: Path = HOST_SOURCES, codename: str | None = None) -> HostArchives:
    """The host's Debian archive and security archive, found by the host's own suite names."""
    codename = codename or host_codename()
    main = security = None
    for entry in _stanzas(root):
        suites = entry["suites"].split()
        keyring = entry["signed-by"] if entry["signed-by"].startswith("/") else DEFAULT_KEYRING
        if "main" not in entry["components"].split():
            continue
        if main is None and codename in suites:
            main = ArchiveSource(entry["uri"].rstrip("/"), keyring)
        if security is None and f"{codename}-security" in suites:
            security = ArchiveSource(entry["uri"].rstrip("/"), keyring)
    if main is None:
        raise UsageError(
            f"no Debian archive for '{codename}' in the host's apt sources ({root}); "
            "add the Debian archive the host should use, or install the linux-source package yourself"
        )
    return HostArchives(main, security)


def host_codename() -> str:
    release = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", release, re.M)
    if not match:
        raise UsageError("cannot tell the host's Debian release from /etc/os-release")
    return match.group(1)


def guest_deb_arches() -> tuple[str, ...]:
    """Every guest's Debian architecture, for its busybox-static and static libraries."""
    return tuple(sorted({arch.deb_arch for arch in all_arches().values()}))


def sources_list(archives: HostArchives, codename: str) -> str:
    """Every suite for the kernel sources (Architecture: all, so the host's lists have them); the host's own
    release, whose guest packages gupvm takes, for every guest arch as well. The sources name the arches, so a
    new guest arch changes them and the lists are fetched again."""
    def line(source: ArchiveSource, suite: str) -> str:
        arches = (HOST_DEB_ARCH, *guest_deb_arches()) if suite == codename else (HOST_DEB_ARCH,)
        return f"deb [signed-by={source.keyring} arch={','.join(dict.fromkeys(arches))}] {source.uri} {suite} main"
    lines = [line(archives.main, suite) for suite in SUITES]
    if archives.security:
        lines += [line(archives.security, suite) for suite in SECURITY_SUITES]
    return "\n".join(lines) + "\n"


def compare_versions(left: str, right: str) -> int:
    """Debian version order, as dpkg itself decides it."""
    if left == right:
        return 0
    less = interrupt.run(["dpkg", "--compare-versions", left, "lt", right]).returncode == 0
    return -1 if less else 1


def newest_first(versions: list[str]) -> list[str]:
    return sorted(set(versions), key=functools.cmp_to_key(compare_versions), reverse=True)


class PrivateApt:
    """apt-get and apt-cache with a state of their own under cache_dir/apt."""

    def __init__(self, cache_dir: Path, archives: HostArchives | None = None):
        self.root = Cache(cache_dir).apt
        self._archives = archives

    def _options(self) -> list[str]:
        root = self.root
        return [
            "-o", f"Dir::Etc::SourceList={root}/sources.list",
            "-o", f"Dir::Etc::SourceParts={root}/sources.list.d",
            "-o", f"Dir::Etc::Preferences={root}/preferences",
            "-o", f"Dir::Etc::PreferencesParts={root}/preferences.d",
            "-o", f"Dir::State={root}/state",
            "-o", f"Dir::State::Lists={root}/lists",
            "-o", f"Dir::State::status={root}/status",
            "-o", f"Dir::Cache={root}/cache",
            "-o", f"APT::Architecture={HOST_DEB_ARCH}",
            *[item for arch in guest_deb_arches() for item in ("-o", f"APT::Architectures::={arch}")],
            "-o", "Acquire::Languages=none",
            "-o", "APT::Sandbox::User=root",
            "-q",
        ]

    def _prepare(self) -> None:
        for directory in ("sources.list.d", "preferences.d", "state", "lists/partial", "cache/archives/partial"):
            (self.root / directory).mkdir(parents=True, exist_ok=True)
        (self.root / "status").touch()
        wanted = sources_list(self._archives or host_archives(), host_codename())
        sources = self.root / "sources.list"
        if not sources.is_file() or sources.read_text() != wanted:
            sources.write_text(wanted)
            (self.root / "updated").unlink(missing_ok=True)

    def update(self, max_age: float = LISTS_MAX_AGE_SECONDS) -> None:
        """Fetch the suites' package lists, unless a fetch younger than max_age seconds has them."""
        with exclusive(self.root.with_name("apt.lock")):
            self._prepare()
            stamp = self.root / "updated"
            if stamp.is_file() and time.time() - stamp.stat().st_mtime < max_age:
                return
            result = interrupt.run(["apt-get", *self._options(), "update"], capture_output=True, text=True,
                                    stdin=subprocess.DEVNULL)
            # A suite the archive does not serve fails alone; the others are still read.
            if not list((self.root / "lists").glob("*_Packages*")):
                said = (result.stderr.strip().splitlines() or ["(nothing said)"])[-1]
                raise InfrastructureError(f"apt-get update (gupvm's private apt state in {self.root}) failed: {said}")
            stamp.touch()

    def versions(self, package: str, suite: str = "") -> list[str]:
        """Every version of package any suite (or the one suite named) has, newest first."""
        result = interrupt.run(["apt-cache", *self._options(), "madison", package], capture_output=True, text=True)
        rows = [[field.strip() for field in line.split("|")] for line in result.stdout.splitlines() if "|" in line]
        return newest_first([row[1] for row in rows if not suite or f" {suite}/" in row[2]])

    def packages(self, prefix: str) -> list[str]:
        result = interrupt.run(["apt-cache", *self._options(), "pkgnames", prefix], capture_output=True, text=True)
        return sorted(set(result.stdout.split()))

    def download(self, package: str, version: str, destination: Path) -> Path:
        """The .deb of package=version, downloaded into destination."""
        destination.mkdir(parents=True, exist_ok=True)
        result = interrupt.run(["apt-get", *self._options(), "download", f"{package}={version}"], cwd=destination,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL)
        debs = sorted(destination.glob(f"{package.split(':')[0]}_*.deb"))
        if result.returncode != 0 or not debs:
            said = (result.stderr.strip().splitlines() or ["(nothing said)"])[-1]
            raise InfrastructureError(f"apt-get download {package}={version} failed: {said}")
        return debs[-1]
