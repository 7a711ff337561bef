"""Per-architecture parameters, loaded from the data files in arches/.

Everything that differs between the x86 variants lives in one TOML file
each; adding a variant means adding a file, not code.
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
    make_arch: str
    kernel_image: str
    kconfig_fragment: str
    qemu_binary: str
    qemu_machine: str
    memory_mb: int
    console: str
    kernel_args: tuple[str, ...]
    guest_cflags: tuple[str, ...]
    deb_arch: str  # the guest's Debian architecture: its busybox-static and static libraries
    bits: int
    pae: bool
    page_size: int
    huge_page_size: int
    # Options no fragment can ask for (they are selected), checked all the
    # same: each entry is satisfied by any one of its CONFIG_X=value choices.
    config_checks: tuple[tuple[str, ...], ...] = ()

    @property
    def pages_per_huge_page(self) -> int:
        return self.huge_page_size // self.page_size


def _load(path: Path) -> Arch:
    data = tomllib.loads(path.read_text())
    data["guest_cflags"] = tuple(data["guest_cflags"])
    data["kernel_args"] = tuple(data["kernel_args"])
    data["config_checks"] = tuple(tuple(choices) for choices in data.get("config_checks", ()))
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
