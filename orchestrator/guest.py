"""The guest's userspace: gup_test built from the tree under test, busybox, an init.

gup_test is compiled statically against the tree's own uapi headers
(make headers_install), with the tree's own selftests Makefile. That
Makefile writes generated headers next to its sources, so it runs in a
shadow copy of the selftests folder, never in the tree itself.
"""

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from virtme.cpiowriter import CpioWriter

from orchestrator.arches import Arch
from orchestrator.commands import run_logged
from orchestrator.errors import InfrastructureError
from orchestrator.paths import exclusive
from orchestrator.source import KernelSource

# Built when the tree has them; gup_longterm appeared in 6.5.
GUEST_PROGRAMS = ("gup_test", "gup_longterm")
# Written last: an interrupted build leaves files that look whole and are not.
COMPLETE = "gupvm-complete"


@dataclass(frozen=True)
class GuestTools:
    programs: dict[str, Path]
    busybox: Path


def build_guest_tools(source: KernelSource, arch: Arch, cache_dir: Path, log: Path) -> GuestTools:
    with exclusive(cache_dir / "guest.lock"):
        return GuestTools(programs=_build_programs(source, arch, cache_dir, log),
                          busybox=_busybox(arch, cache_dir, log))


def _build_programs(source: KernelSource, arch: Arch, cache_dir: Path, log: Path) -> dict[str, Path]:
    key = hashlib.sha256(f"{source.fingerprint}\0{arch.make_arch}\0{arch.guest_cflags}".encode()).hexdigest()[:16]
    root = cache_dir / "guest" / f"{source.slot}-{arch.make_arch}-{key}"  # i386 and i386-pae share one
    output = root / "bin"
    wanted = [name for name in GUEST_PROGRAMS if (source.selftests_dir / f"{name}.c").is_file()]
    built = {name: output / name for name in wanted}
    if (root / COMPLETE).is_file() and all(path.is_file() for path in built.values()):
        return built
    shutil.rmtree(root, ignore_errors=True)
    headers = root / "headers"
    run_logged(
        ["make", "-s", "-C", str(source.path), f"O={headers}", f"ARCH={arch.make_arch}", "headers_install"],
        what="make headers_install",
        log=log,
        background=True,
    )
    shadow = _shadow_selftests(source, root / "shadow")
    output.mkdir(parents=True)
    run_logged(
        [
            "make", "-C", str(shadow), f"OUTPUT={output}",
            f"KHDR_INCLUDES=-isystem {headers}/usr/include",
            "EXTRA_CFLAGS=" + " ".join(["-static", *arch.guest_cflags]),
            *map(str, built.values()),
        ],
        what=f"building {', '.join(wanted)} ({arch.name})",
        log=log,
        background=True,
    )
    (root / COMPLETE).touch()
    return built


def _shadow_selftests(source: KernelSource, shadow_root: Path) -> Path:
    """A tree of links to the source in which only the selftests folders are real copies."""
    selftests = source.selftests_dir
    here, there = shadow_root, source.path
    for part in selftests.relative_to(source.path).parts:
        here.mkdir(parents=True, exist_ok=True)
        in_selftests = there == selftests.parent
        for entry in there.iterdir():
            if entry.name == part:
                continue
            if in_selftests and entry.is_file():
                shutil.copy2(entry, here / entry.name)  # lib.mk locates itself by its real path
            else:
                (here / entry.name).symlink_to(entry)
        here, there = here / part, there / part
    shutil.copytree(selftests, here, symlinks=True)
    return here


def _busybox(arch: Arch, cache_dir: Path, log: Path) -> Path:
    """busybox-static of the guest's arch, from Debian's package (it cannot be co-installed for two arches)."""
    root = cache_dir / "busybox" / arch.busybox_deb_arch
    binary = root / "bin/busybox"
    if (root / COMPLETE).is_file():
        return binary
    download = root / "deb"
    shutil.rmtree(root, ignore_errors=True)
    download.mkdir(parents=True)
    run_logged(
        ["apt-get", "download", f"busybox-static:{arch.busybox_deb_arch}"],
        what=f"apt-get download busybox-static:{arch.busybox_deb_arch} (did the set-up add the i386 architecture?)",
        log=log,
        cwd=download,
    )
    debs = list(download.glob("*.deb"))
    if not debs:
        raise InfrastructureError(f"apt-get download busybox-static:{arch.busybox_deb_arch} left no .deb")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    (root / COMPLETE).touch()
    return binary


def write_initramfs(tools: GuestTools, init_script: str, destination: Path) -> None:
    """A newc cpio archive: busybox, the test programs and the init that runs the plan."""
    with destination.open("wb") as archive:
        cpio = CpioWriter(archive)
        for directory in (b"bin", b"dev", b"proc", b"sys", b"tmp", b"gupvm"):
            cpio.mkdir(directory, 0o755)
        # The kernel opens /dev/console before init mounts devtmpfs.
        cpio.mkchardev(b"dev/console", (5, 1), mode=0o600)
        with tools.busybox.open("rb") as busybox:
            cpio.write_file(b"bin/busybox", busybox, 0o755)
        cpio.symlink(b"busybox", b"bin/sh")
        for name, path in tools.programs.items():
            with path.open("rb") as program:
                cpio.write_file(f"gupvm/{name}".encode(), program, 0o755)
        cpio.write_file(b"init", init_script.encode(), 0o755)
        cpio.write_trailer()
