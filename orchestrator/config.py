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
OPTION_LINE = re.compile(r'^CONFIG_[A-Za-z0-9_]+=(y|n|m|-?\d+|0x[0-9a-fA-F]+|"(?:[^"\\\x00-\x1f]|\\[^\x00-\x1f])*")$')
MAX_FRAGMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class Mismatch:
    option: str
    asked: str
    actual: str

    def __str__(self) -> str:
        return f"{self.option}: asked {self.asked}, got {self.actual}"


@dataclass(frozen=True)
class ConfigRequest:
    """What the final .config must contain: gupvm's fragments, the plan's options, the user's fragments
    and options, merged in that order."""

    own: tuple[Path, ...]  # gupvm's fragments: what every test kernel needs, whatever else is asked
    user: tuple[Path, ...]
    additions: tuple[str, ...]
    checks: tuple[tuple[str, ...], ...] = ()  # each satisfied by any one of its CONFIG_X=value choices
    plan_options: tuple[str, ...] = ()  # what the plan's steps need, verified like gupvm's own

    @classmethod
    def for_arch(
        cls, arch: Arch, user_fragments: list[Path], additions: list[str], plan_options: tuple[str, ...] = ()
    ) -> "ConfigRequest":
        for fragment in user_fragments:
            check_fragment(fragment)
        for addition in additions:
            if not OPTION_LINE.match(addition):
                raise UsageError(
                    f"--kconfig-add {addition!r}: expected CONFIG_NAME=value with y, n, m, a number or a quoted string"
                )
        own = (KCONFIGS_DIR / arch.kconfig_fragment, GUP_FRAGMENT)
        return cls(own=own, user=tuple(user_fragments), additions=tuple(additions), checks=arch.config_checks,
                   plan_options=tuple(plan_options))

    @property
    def fragments(self) -> tuple[Path, ...]:
        return self.own + self.user

    def additions_fragment(self) -> str:
        return _options_fragment(self.additions)

    def plan_fragment(self) -> str:
        return _options_fragment(self.plan_options)

    def needed(self) -> dict[str, str]:
        """What gupvm and the plan need: no later request may change it."""
        wanted: dict[str, str] = {}
        for fragment in self.own:
            wanted.update(parse_config(fragment.read_text()))
        wanted.update(parse_config(self.plan_fragment()))
        return wanted

    def requested(self) -> dict[str, str]:
        """Every option asked for, later requests winning."""
        wanted = self.needed()
        for fragment in self.user:
            wanted.update(parse_config(fragment.read_text()))
        wanted.update(parse_config(self.additions_fragment()))
        return wanted

    def key(self) -> str:
        """The same for requests that ask the same of the final .config, however they ask it
        (a plan's options or --kconfig-add, a fragment or another): they merge to the same config."""
        wanted = sorted(self.requested().items())
        return hashlib.sha256(repr((wanted, self.checks)).encode()).hexdigest()


def check_fragment(fragment: Path) -> None:
    """A user's fragment is text of CONFIG_ lines and comments, or it is refused before anything runs."""
    fix = "give a Kconfig fragment of CONFIG_NAME=value lines and # comments"
    try:
        data = fragment.read_bytes()
    except FileNotFoundError:
        raise UsageError(f"--kconfig {fragment}: no such file; {fix}") from None
    except OSError as error:
        raise UsageError(f"--kconfig {fragment}: cannot read it ({error.strerror}); {fix}") from None
    if len(data) > MAX_FRAGMENT_BYTES or b"\0" in data:
        raise UsageError(f"--kconfig {fragment}: a binary or oversized file, not a Kconfig fragment; {fix}")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise UsageError(f"--kconfig {fragment}: not UTF-8 text, not a Kconfig fragment; {fix}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if line and not line.startswith("#") and not OPTION_LINE.match(line):
            raise UsageError(f"--kconfig {fragment}: line {number} is not a Kconfig line ({line[:40]!r}); {fix}")


def _fragment_line(option: str, value: str) -> str:
    return f"# {option} is not set" if value == "n" else f"{option}={value}"


def _options_fragment(options: tuple[str, ...]) -> str:
    return "".join(_fragment_line(*option.split("=", 1)) + "\n" for option in options)


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
    switched_off = verify(request.needed(), final.options)
    if switched_off:
        raise UsageError(
            f"the {arch.name} config switches off what gupvm or the plan needs: " + "; ".join(map(str, switched_off))
            + " (remove the --kconfig/--kconfig-add that turns it off, or that switches off what it depends on)"
        )
    mismatches = verify(request.requested(), final.options, request.checks)
    if mismatches:
        raise UsageError(
            f"the {arch.name} config cannot be satisfied: " + "; ".join(map(str, mismatches))
            + " (an option whose dependencies are off is dropped: change the --kconfig/--kconfig-add that conflict)"
        )
    if not from_cache:  # only a verified config is cached, and never half-written
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + ".partial")
        partial.write_text(final.text)
        partial.rename(cached)
    return final


def _merge(source: KernelSource, arch: Arch, request: ConfigRequest, build_dir: Path, log: Path, jobs: int) -> str:
    build_dir.mkdir(parents=True, exist_ok=True)
    # -j: the first pass also compiles the kconfig tools.
    make = ["make", "-s", f"-j{jobs}", "-C", str(source.path), f"O={build_dir}", f"ARCH={arch.make_arch}"]
    run_logged([*make, "tinyconfig"], what="make tinyconfig", log=log)
    plan_options = build_dir / "gupvm-plan.config"
    plan_options.write_text(request.plan_fragment())
    additions = build_dir / "gupvm-additions.config"
    additions.write_text(request.additions_fragment())
    # merge_config.sh writes its scratch files into the current directory,
    # so it runs in the build directory, never in the source tree.
    run_logged(
        [
            str(source.path / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(build_dir),
            str(build_dir / ".config"), *map(str, request.own), str(plan_options), *map(str, request.user),
            str(additions),
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

