"""The guest's userspace: gup_test built from the tree under test, busybox, an init.

gup_test is compiled statically against the tree's own uapi headers
(make headers_install), with the tree's own selftests Makefile. That
Makefile writes generated headers next to its sources, so it runs in a
shadow copy of the selftests folder, never in the tree itself.
"""

import hashlib
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from virtme.cpiowriter import CpioWriter

from orchestrator import interrupt
from orchestrator.arches import Arch
from orchestrator.debian_archive import PrivateApt, host_codename
from orchestrator.errors import InfrastructureError
from orchestrator.features import Feature
from orchestrator.gup_programs import program_kinds, source_of
from orchestrator.layout import Cache
from orchestrator.paths import SELFTESTS_DIR, exclusive, find_program, mark_used
from orchestrator.source import KernelSource
from orchestrator.tools import run_logged

# Written last: an interrupted build leaves files that look whole and are not.
COMPLETE = "gupvm-complete"


@dataclass(frozen=True)
class GuestTools:
    programs: dict[str, Path]
    busybox: Path


def build_guest_tools(source: KernelSource, arch: Arch, cache_dir: Path, log: Path,
                      selftests: KernelSource | None = None) -> GuestTools:
    """The guest's programs, built statically from the tree's own selftests (or, but for those that speak the
    kernel's own interface, from selftests' tree), and busybox; cached."""
    with exclusive(Cache(cache_dir).guest_lock):
        libraries = tuple(_guest_deb(package, arch, cache_dir, log) for package in LIBRARY_PACKAGES)
        # gupvm's own workloads use gup_test's ioctls too: built against the kernel's tree.
        from_kernel = [kind.name for kind in program_kinds().values()
                       if kind.kernel_abi or kind.own or selftests is None]
        others = [name for name in program_kinds() if name not in from_kernel]  # none without --selftests-from
        programs = {**_build_programs(selftests or source, arch, libraries, others, cache_dir, log),
                    **_build_programs(source, arch, libraries, from_kernel, cache_dir, log)}
        return GuestTools(programs=programs, busybox=_guest_deb("busybox-static", arch, cache_dir, log) / "bin/busybox")


# Static libraries that selftests link (their Makefile's LDLIBS): liburing for
# the io_uring cases of cow and gup_longterm (compiled out without it), libcap
# for memfd_secret, libnuma for migration.
LIBRARY_PACKAGES = ("liburing-dev", "libcap-dev", "libnuma-dev")


def _library_flags(libraries: tuple[Path, ...]) -> list[str]:
    """Compiler flags that find the unpacked libraries' headers and static archives."""
    flags = []
    for root in libraries:
        flags.append(f"-isystem {root}/usr/include")
        flags += sorted({f"-L{archive.parent}" for archive in root.glob("usr/lib/**/*.a")})
    return flags


def _build_programs(source: KernelSource, arch: Arch, libraries: tuple[Path, ...], names: list[str],
                    cache_dir: Path, log: Path) -> dict[str, Path]:
    # Whichever the tree has: gup_benchmark (5.10) or gup_test, gup_longterm from 6.5, cow from 6.2, ...; and
    # gupvm's own workloads, built against this tree's headers.
    kinds = program_kinds()
    wanted = [name for name in names if source_of(kinds[name], source.selftests_dir).is_file()]
    if not wanted:
        return {}
    key = _inputs_key(source, arch, libraries, names)
    root = Cache(cache_dir).guest_programs / f"{arch.make_arch}-{key}"  # i386 and i386-pae share one, so do the armv7s
    output = root / "bin"
    built = {name: output / name for name in wanted}
    if (root / COMPLETE).is_file() and all(path.is_file() for path in built.values()):
        mark_used(root)
        return built
    shutil.rmtree(root, ignore_errors=True)
    headers = root / "headers"
    run_logged(
        ["make", "-s", "-C", str(source.path), f"O={headers}", *arch.make_variables, "headers_install"],
        what="make headers_install",
        log=log,
        background=True,
    )
    output.mkdir(parents=True)
    flags = ["-static", f"-isystem {headers}/usr/include", *_library_flags(libraries)]
    from_tree = [name for name in wanted if not kinds[name].own]
    if from_tree:
        shadow = _shadow_selftests(source, root / "shadow")
        run_logged(
            [
                "make", "-C", str(shadow), f"OUTPUT={output}", f"CROSS_COMPILE={arch.cross_compile}",
                # 6.x reads the uapi headers from KHDR_INCLUDES, 5.10 only from
                # EXTRA_CFLAGS; and 5.10's lib.mk would install headers into the
                # tree unless told they are installed.
                f"KHDR_INCLUDES=-isystem {headers}/usr/include", "KSFT_KHDR_INSTALL_DONE=1",
                "EXTRA_CFLAGS=" + " ".join(flags),
                *(str(built[name]) for name in from_tree),
            ],
            what=f"building {', '.join(from_tree)} ({arch.name})",
            log=log,
            background=True,
        )
    for name in wanted:
        if kinds[name].own:
            # mm/gup_test.h, where the tree has it (5.11 and later): gup_test's ioctls as this kernel speaks them.
            run_logged([arch.compiler, "-O2", "-Wall", *shlex.split(" ".join(flags)), "-iquote",
                        str(source.path / "mm"), "-o", str(built[name]), str(SELFTESTS_DIR / kinds[name].source),
                        *(f"-l{library}" for library in kinds[name].libraries)],
                       what=f"building {name} ({arch.name})", log=log, background=True)
    (root / COMPLETE).touch()
    return built


def _inputs_key(source: KernelSource, arch: Arch, libraries: tuple[Path, ...], names: list[str]) -> str:
    """A hash of what the programs are built from, so another commit of the tree reuses them if it left these be:
    the selftests folder, the selftests' own top-level files (lib.mk, kselftest.h), the uapi headers and the
    libraries' packages."""
    digest = hashlib.sha256(f"{arch.make_arch}\0{arch.compiler}\0"
                            f"{[root.name for root in libraries]}\0{sorted(names)}".encode())
    for root in libraries:
        digest.update((root / PACKAGE_VERSION).read_bytes())
    selftests = source.selftests_dir
    inputs = [*sorted(path for path in selftests.parent.iterdir() if path.is_file())]
    kinds = program_kinds()
    if any(kinds[name].own for name in names):
        digest.update(b"".join(path.name.encode() + b"\0" + path.read_bytes()
                               for path in sorted(SELFTESTS_DIR.glob("*.[ch]"))))
        inputs += [source.path / "mm/gup_test.h"] if (source.path / "mm/gup_test.h").is_file() else []
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


PACKAGE_VERSION = "gupvm-package-version"


def _guest_deb(package: str, arch: Arch, cache_dir: Path, log: Path) -> Path:
    """A package of the guest's Debian arch from the host's Debian release, unpacked; through gupvm's private apt
    state, since the host cannot install a package for two arches at once."""
    root = Cache(cache_dir).guest_debs / f"{package}_{arch.deb_arch}"
    if (root / COMPLETE).is_file():
        mark_used(root)
        return root
    wanted = f"{package}:{arch.deb_arch}"
    apt = PrivateApt(cache_dir)
    apt.update()
    versions = apt.versions(wanted, suite=host_codename())
    if not versions:
        raise InfrastructureError(f"no {wanted} in the host's Debian release ({host_codename()})")
    shutil.rmtree(root, ignore_errors=True)
    deb = apt.download(wanted, versions[0], root / "deb")
    interrupt.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / PACKAGE_VERSION).write_text(f"{wanted} {versions[0]}\n")
    with log.open("a") as log_file:
        log_file.write(f"# {wanted} {versions[0]} unpacked into {root}\n")
    (root / COMPLETE).touch()
    return root


def feature_images(features: tuple[Feature, ...], cache_dir: Path, log: Path) -> dict[str, Path]:
    """The filesystem images the features ask of the host, by the guest's file name; made once, cached by the
    command that makes them."""
    images = {}
    for feature in features:
        if not feature.image:
            continue
        key = hashlib.sha256(repr((feature.image, feature.image_mb)).encode()).hexdigest()[:16]
        root = Cache(cache_dir).guest_images / f"{feature.name}-{key}"
        image = root / "image"
        if not (root / COMPLETE).is_file():
            root.mkdir(parents=True, exist_ok=True)
            with image.open("wb") as file:
                file.truncate(feature.image_mb << 20)
            program = find_program(feature.image[0])
            if program is None:
                raise InfrastructureError(f"{feature.image[0]} not found (the {feature.name} image needs it); "
                                          "run ci/setup-debian.sh")
            run_logged([program, *feature.image[1:], str(image)], what=f"making the {feature.name} image", log=log)
            (root / COMPLETE).touch()
        mark_used(root)
        images[f"{feature.name}.img"] = image
    return images


def write_initramfs(tools: GuestTools, init_script: str, destination: Path,
                    files: dict[str, Path] | None = None) -> None:
    """A newc cpio archive: busybox, the test programs, files (in /gupvm, by name) and the init that runs the
    plan."""
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
        for name, path in (files or {}).items():
            with path.open("rb") as file:
                cpio.write_file(f"gupvm/{name}".encode(), file, 0o644)
        cpio.write_file(b"init", init_script.encode(), 0o755)
        cpio.write_trailer()
