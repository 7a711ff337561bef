"""Finding the host's own Debian archive in its apt sources, in both formats apt reads."""

from pathlib import Path

import pytest

from orchestrator.debian_archive import DEFAULT_KEYRING, SUITES, host_archives, newest_first, sources_list
from orchestrator.errors import UsageError

MAIN, SECURITY = "http://archive.invalid/debian", "http://security.invalid/debian-security"


def write(root: Path, name: str, text: str) -> None:
    (root / "sources.list.d").mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_one_line_sources(tmp_path: Path):
    write(tmp_path, "sources.list", f"# a comment\ndeb-src {MAIN} bookworm main\ndeb {MAIN}/ bookworm main contrib\n"
                                    f"deb [arch=amd64 signed-by=/k.gpg] {SECURITY} bookworm-security main\n")
    archives = host_archives(tmp_path, "bookworm")
    assert archives.main.uri == MAIN and archives.main.keyring == DEFAULT_KEYRING
    assert archives.security.uri == SECURITY and archives.security.keyring == "/k.gpg"


def test_deb822_sources_skipping_other_vendors(tmp_path: Path):
    write(tmp_path, "sources.list.d/vendor.sources", "Types: deb\nURIs: https://vendor.invalid/apt\n"
                                                     "Suites: nodistro\nComponents: main\n")
    write(tmp_path, "sources.list.d/debian.sources",
          f"Types: deb\n# a comment\nURIs: {MAIN}\nSuites: bookworm bookworm-updates\nComponents: main\n"
          f"Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
          f"Types: deb\nURIs: {SECURITY}\nSuites: bookworm-security\nComponents: main\nEnabled: yes\n")
    archives = host_archives(tmp_path, "bookworm")
    assert (archives.main.uri, archives.security.uri) == (MAIN, SECURITY)
    listing = sources_list(archives, "bookworm")
    assert all(f"{MAIN} {suite} main" in listing for suite in SUITES)
    # The guests' packages come from the host's release: its suites are read for every guest arch, the others
    # (kernel sources only) for the host's.
    assert f"arch=amd64,arm64,armhf,i386] {MAIN} bookworm main" in listing
    assert f"arch=amd64] {SECURITY} bookworm-security main" in listing
    assert f"arch=amd64] {MAIN} trixie main" in listing and f"arch=amd64] {MAIN} bookworm-backports main" in listing
    assert f"{SECURITY} bullseye-security main" in listing and "vendor.invalid" not in listing


def test_no_debian_archive_is_a_usage_error(tmp_path: Path):
    write(tmp_path, "sources.list", "deb https://vendor.invalid/apt nodistro main\n")
    with pytest.raises(UsageError, match="no Debian archive for 'bookworm'"):
        host_archives(tmp_path, "bookworm")


def test_versions_in_debian_order():
    assert newest_first(["7.3~rc7-1~exp1", "7.3-1", "7.3~rc6-1", "7.3-1"]) == ["7.3-1", "7.3~rc7-1~exp1", "7.3~rc6-1"]
