"""Per-architecture parameters, loaded from the data files in arches/.

Everything that differs between the arches (x86 and ARM, each with its
32-bit variants) lives in one TOML file each; adding an arch means adding a
file, not code.
"""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.paths import ARCHES_DIR

DEFAULT_ARCH = "x86_64"


@dataclass(frozen=True)
class Arch:
    name: str
    make_arch: str  # the kernel's ARCH=, which is also KCIDB's name of the architecture
    kernel_image: str
    kconfig_fragments: tuple[str, ...]  # merged after gup.config, so an arch may switch off what it cannot have
    qemu_binary: str
    qemu_package: str  # the Debian package of qemu_binary
    qemu_machine: str
    qemu_cpu: str  # the CPU model under TCG (KVM runs the host's)
    memory_mb: int
    console: str
    kernel_args: tuple[str, ...]
    deb_arch: str  # the guest's Debian architecture: its busybox-static and static libraries
    bits: int
    pae: bool
    page_size: int
    huge_page_size: int  # the default hugetlb size and the THP size; 0 where the arch has neither
    cross_compile: str = ""  # the toolchain's prefix (make CROSS_COMPILE=) where it is not the host's own
    # the Debian packages of that toolchain: the compiler and the C library its static programs link
    compiler_packages: tuple[str, ...] = ("gcc",)
    # hugetlb sizes beside the default: a step that maps hugetlb memory runs again at each (plan.on_arch)
    extra_hugetlb_sizes: tuple[int, ...] = ()
    # vCPUs under the icount clock, where TCG runs them all on one host thread (realtime and KVM: two)
    icount_cpus: int = 2
    # (a step's need, why the arch cannot meet it): the steps that need it are skipped with that reason
    lacks: tuple[tuple[str, str], ...] = ()
    # Options no fragment can ask for (they are selected), checked all the
    # same: each entry is satisfied by any one of its CONFIG_X=value choices.
    config_checks: tuple[tuple[str, ...], ...] = ()

    @property
    def pages_per_huge_page(self) -> int:
        return self.huge_page_size // self.page_size

    @property
    def make_variables(self) -> tuple[str, ...]:
        """What every make of the kernel's tree is told of the arch: its ARCH and, where it differs, the
        toolchain (Kconfig asks the compiler too, so the config stage needs it as much as the build)."""
        return (f"ARCH={self.make_arch}", f"CROSS_COMPILE={self.cross_compile}")

    @property
    def compiler(self) -> str:
        """The C compiler of the guest's programs."""
        return f"{self.cross_compile}gcc"

    @property
    def compiler_tool(self) -> tuple[str, str]:
        """(the guest's C compiler, the Debian packages that bring it and the C library its programs link)."""
        return self.compiler, " ".join(self.compiler_packages)

    def host_tools(self, boots: bool = True) -> tuple[tuple[str, str], ...]:
        """(program, the Debian packages that bring it) of what building for the arch, and booting it, runs."""
        return (self.compiler_tool, (self.qemu_binary, self.qemu_package)) if boots else (self.compiler_tool,)

    def hugetlb_pages(self, megabytes: int, size: int = 0) -> int:
        """How many huge pages of size (default: the arch's) make megabytes; none where the arch has none."""
        size = size or self.huge_page_size
        return (megabytes << 20) // size if size else 0


def _load(path: Path) -> Arch:
    data = tomllib.loads(path.read_text())
    for key in ("kernel_args", "kconfig_fragments", "extra_hugetlb_sizes", "compiler_packages"):
        data[key] = tuple(data.get(key, ()))
    data["config_checks"] = tuple(tuple(choices) for choices in data.get("config_checks", ()))
    data["lacks"] = tuple(data.get("lacks", {}).items())
    return Arch(**data)


@cache
def all_arches() -> dict[str, Arch]:
    arches = (_load(path) for path in sorted(ARCHES_DIR.glob("*.toml"), key=lambda path: path.stem))
    return {arch.name: arch for arch in arches}


def select_arches(names: list[str] | None) -> list[Arch]:
    """The arches named on the command line, in order; 'all' means every one."""
    known = all_arches()
    chosen: list[Arch] = []
    for name in names or [DEFAULT_ARCH]:
        wanted = list(known) if name == "all" else [name]
        for each in wanted:
            if each not in known:
                raise UsageError(
                    f"unknown arch {each!r}: choose from {', '.join(known)} or all"
                )
            if known[each] not in chosen:
                chosen.append(known[each])
    return chosen
