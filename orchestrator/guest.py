"""The guest's userspace: gup_test built from the tree under test, busybox, an init.

gup_test is compiled statically against the tree's own uapi headers
(make headers_install), with the tree's own selftests Makefile. That
Makefile writes generated headers next to its sources, so it runs in a
shadow copy of the selftests folder, never in the tree itself.
"""

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from virtme.cpiowriter import CpioWriter

from orchestrator import interrupt
from orchestrator.arches import Arch
from orchestrator.debian_archive import PrivateApt, host_codename
from orchestrator.errors import InfrastructureError
from orchestrator.gup_programs import program_kinds
from orchestrator.layout import Cache
from orchestrator.paths import exclusive, mark_used
from orchestrator.source import KernelSource
from orchestrator.tools import run_logged

# Written last: an interrupted build leaves files that look whole and are not.
COMPLETE = "gupvm-complete"


@dataclass(frozen=True)
class GuestTools:
    programs: dict[str, Path]
    busybox: Path


def build_guest_tools(source: KernelSource, arch: Arch, cache_dir: Path, log: Path) -> GuestTools:
    """The guest's programs, built statically from the tree's own selftests, and busybox; cached."""
    with exclusive(Cache(cache_dir).guest_lock):
        return GuestTools(programs=_build_programs(source, arch, cache_dir, log),
                          busybox=_busybox(arch, cache_dir, log))


def _build_programs(source: KernelSource, arch: Arch, cache_dir: Path, log: Path) -> dict[str, Path]:
    key = _inputs_key(source, arch)
    root = Cache(cache_dir).guest_programs / f"{arch.make_arch}-{key}"  # i386 and i386-pae share one
    output = root / "bin"
    # Whichever the tree has: gup_benchmark (5.10) or gup_test, and gup_longterm from 6.5.
    wanted = [kind.name for kind in program_kinds().values() if (source.selftests_dir / kind.source).is_file()]
    built = {name: output / name for name in wanted}
    if (root / COMPLETE).is_file() and all(path.is_file() for path in built.values()):
        mark_used(root)
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
            # 6.x reads the uapi headers from KHDR_INCLUDES, 5.10 only from
            # EXTRA_CFLAGS; and 5.10's lib.mk would install headers into the
            # tree unless told they are installed.
            f"KHDR_INCLUDES=-isystem {headers}/usr/include", "KSFT_KHDR_INSTALL_DONE=1",
            "EXTRA_CFLAGS=" + " ".join(["-static", f"-isystem {headers}/usr/include", *arch.guest_cflags]),
            *map(str, built.values()),
        ],
        what=f"building {', '.join(wanted)} ({arch.name})",
        log=log,
        background=True,
    )
    (root / COMPLETE).touch()
    return built


def _inputs_key(source: KernelSource, arch: Arch) -> str:
    """A hash of what the programs are built from, so another commit of the tree reuses them if it left these be:
    the selftests folder, the selftests' own top-level files (lib.mk, kselftest.h), and the uapi headers."""
    digest = hashlib.sha256(f"{arch.make_arch}\0{arch.guest_cflags}".encode())
    selftests = source.selftests_dir
    inputs = [*sorted(path for path in selftests.parent.iterdir() if path.is_file())]
    source_arch = Path(arch.kernel_image).parts[1]  # the kernel's SRCARCH: arch/x86/boot/bzImage -> x86
    for folder in (selftests, source.path / "include/uapi", source.path / "arch" / source_arch / "include/uapi"):
        inputs += sorted(path for path in folder.rglob("*") if path.is_file())
    for path in inputs:
        digest.update(str(path.relative_to(source.path)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


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
    """busybox-static of the guest's arch, from the host's Debian release (through gupvm's private apt state,
    since the package cannot be installed for two arches at once)."""
    root = Cache(cache_dir).busybox / arch.busybox_deb_arch
    binary = root / "bin/busybox"
    if (root / COMPLETE).is_file():
        mark_used(root)
        return binary
    package = f"busybox-static:{arch.busybox_deb_arch}"
    apt = PrivateApt(cache_dir)
    apt.update()
    versions = apt.versions(package, suite=host_codename())
    if not versions:
        raise InfrastructureError(f"no {package} in the host's Debian release ({host_codename()})")
    shutil.rmtree(root, ignore_errors=True)
    deb = apt.download(package, versions[0], root / "deb")
    interrupt.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    with log.open("a") as log_file:
        log_file.write(f"# {package} {versions[0]} unpacked into {root}\n")
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
