"""Kernel configuration: merge fragments onto tinyconfig, then prove the result.

The merge is the kernel's own (tinyconfig, scripts/kconfig/merge_config.sh,
olddefconfig). Kconfig silently drops an option whose dependencies are not
met, so every option asked for is checked against the final .config before
anything is built.
"""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.arches import Arch
from orchestrator.commands import run_logged
from orchestrator.errors import UsageError
from orchestrator.paths import KCONFIGS_DIR
from orchestrator.source import KernelSource

GUP_FRAGMENT = KCONFIGS_DIR / "gup.config"

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
_ADDITION = re.compile(r'^CONFIG_[A-Za-z0-9_]+=(y|n|m|-?\d+|0x[0-9a-fA-F]+|".*")$')


@dataclass(frozen=True)
class Mismatch:
    option: str
    asked: str
    actual: str

    def __str__(self) -> str:
        return f"{self.option}: asked {self.asked}, got {self.actual}"


@dataclass(frozen=True)
class ConfigRequest:
    """What the final .config must contain: fragments in order, then single options."""

    fragments: tuple[Path, ...]
    additions: tuple[str, ...]
    checks: tuple[tuple[str, ...], ...] = ()  # each satisfied by any one of its CONFIG_X=value choices

    @classmethod
    def for_arch(cls, arch: Arch, user_fragments: list[Path], additions: list[str]) -> "ConfigRequest":
        for fragment in user_fragments:
            if not fragment.is_file():
                raise UsageError(f"--kconfig {fragment}: no such file; give a Kconfig fragment of CONFIG_ lines")
        for addition in additions:
            if not _ADDITION.match(addition):
                raise UsageError(
                    f"--kconfig-add {addition!r}: expected CONFIG_NAME=value with y, n, m, a number or a quoted string"
                )
        fragments = (KCONFIGS_DIR / arch.kconfig_fragment, GUP_FRAGMENT, *user_fragments)
        return cls(fragments=fragments, additions=tuple(additions), checks=arch.config_checks)

    def additions_fragment(self) -> str:
        return "".join(_fragment_line(*addition.split("=", 1)) + "\n" for addition in self.additions)

    def requested(self) -> dict[str, str]:
        """Every option asked for, later requests winning."""
        wanted: dict[str, str] = {}
        for fragment in self.fragments:
            wanted.update(parse_config(fragment.read_text()))
        wanted.update(parse_config(self.additions_fragment()))
        return wanted

    def key(self) -> str:
        digest = hashlib.sha256()
        for fragment in self.fragments:
            digest.update(fragment.read_bytes() + b"\0")
        digest.update("\n".join(self.additions).encode())
        digest.update(repr(self.checks).encode())
        return digest.hexdigest()


def _fragment_line(option: str, value: str) -> str:
    return f"# {option} is not set" if value == "n" else f"{option}={value}"


def parse_config(text: str) -> dict[str, str]:
    """Options of a .config or fragment; an unset option reads as 'n'."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if match := _SET.match(line):
            options[match.group(1)] = match.group(2)
        elif match := _UNSET.match(line):
            options[match.group(1)] = "n"
    return options


def verify(requested: dict[str, str], final: dict[str, str], checks=()) -> list[Mismatch]:
    """Options whose final value differs from the asked one; absent counts as 'n'."""
    mismatches = [
        Mismatch(option, asked, final.get(option, "n"))
        for option, asked in requested.items()
        if final.get(option, "n") != asked
    ]
    for choices in checks:
        wanted = [choice.split("=", 1) for choice in choices]
        if not any(final.get(option, "n") == value for option, value in wanted):
            mismatches.append(Mismatch(
                " or ".join(option for option, _ in wanted),
                " / ".join(value for _, value in wanted),
                " / ".join(final.get(option, "n") for option, _ in wanted),
            ))
    return mismatches


@dataclass(frozen=True)
class FinalConfig:
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:16]

    @property
    def options(self) -> dict[str, str]:
        return parse_config(self.text)


def configure(
    source: KernelSource, arch: Arch, request: ConfigRequest, build_dir: Path, cache_dir: Path, log: Path, jobs: int
) -> FinalConfig:
    """The verified final .config, from the config cache when the same inputs made it before."""
    cache_key = hashlib.sha256(f"{source.fingerprint}\0{arch.name}\0{request.key()}".encode()).hexdigest()[:24]
    cached = cache_dir / "configs" / f"{cache_key}.config"
    from_cache = cached.is_file()
    if from_cache:
        final = FinalConfig(cached.read_text())
    else:
        final = FinalConfig(_merge(source, arch, request, build_dir, log, jobs))
    mismatches = verify(request.requested(), final.options, request.checks)
    if mismatches:
        raise UsageError(
            f"the {arch.name} config cannot be satisfied: " + "; ".join(map(str, mismatches))
            + " (an option whose dependencies are off is dropped: change the --kconfig/--kconfig-add that conflict)"
        )
    if not from_cache:  # only a verified config is cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(final.text)
    return final


def _merge(source: KernelSource, arch: Arch, request: ConfigRequest, build_dir: Path, log: Path, jobs: int) -> str:
    build_dir.mkdir(parents=True, exist_ok=True)
    # -j: the first pass also compiles the kconfig tools.
    make = ["make", "-s", f"-j{jobs}", "-C", str(source.path), f"O={build_dir}", f"ARCH={arch.make_arch}"]
    run_logged([*make, "tinyconfig"], what="make tinyconfig", log=log)
    additions = build_dir / "gupvm-additions.config"
    additions.write_text(request.additions_fragment())
    # merge_config.sh writes its scratch files into the current directory,
    # so it runs in the build directory, never in the source tree.
    run_logged(
        [
            str(source.path / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(build_dir),
            str(build_dir / ".config"), *map(str, request.fragments), str(additions),
        ],
        what="merge_config.sh",
        log=log,
        cwd=build_dir,
    )
    run_logged([*make, "olddefconfig"], what="make olddefconfig", log=log)
    return (build_dir / ".config").read_text()


def install_config(final: FinalConfig, build_dir: Path) -> None:
    """Put the final .config into the build directory, keeping its mtime when unchanged."""
    target = build_dir / ".config"
    if not target.is_file() or target.read_text() != final.text:
        build_dir.mkdir(parents=True, exist_ok=True)
        target.write_text(final.text)

