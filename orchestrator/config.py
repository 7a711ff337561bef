"""Kernel configuration: merge fragments onto tinyconfig, then prove the result.

The merge is the kernel's own (tinyconfig, scripts/kconfig/merge_config.sh,
olddefconfig). Kconfig silently drops an option whose dependencies are not
met, so every option asked for is checked against the final .config before
anything is built.
"""

import dataclasses
import functools
import hashlib
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.arches import Arch
from orchestrator.errors import UsageError
from orchestrator.features import Feature
from orchestrator.kconfig import OPTION_LINE, Mismatch, parse_config, verify
from orchestrator.layout import Cache
from orchestrator.paths import KCONFIGS_DIR, write_atomically
from orchestrator.plan import Plan
from orchestrator.source import KernelSource, version_key
from orchestrator.tools import run_logged

GUP_FRAGMENT = KCONFIGS_DIR / "gup.config"
OPTION_HISTORY = KCONFIGS_DIR / "option-history.toml"
_KCONFIG_SYMBOL = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.M)

MAX_FRAGMENT_BYTES = 1 << 20


@dataclass(frozen=True)
class OptionName:
    """One name of an option, and the kernel versions that have it (empty: no bound)."""

    name: str
    since: str = ""
    until: str = ""

    def lives_in(self, version: str) -> bool:
        key = version_key(version)[:2]
        return (not self.since or key >= version_key(self.since)) and (not self.until or key <= version_key(self.until))

    def __str__(self) -> str:
        return f"{self.name} ({self.since or 'any'} to {self.until or 'now'})"


@functools.cache
def option_history() -> tuple[tuple[OptionName, ...], ...]:
    """Groups of names one option had across kernel versions (kconfigs/option-history.toml)."""
    groups = tomllib.loads(OPTION_HISTORY.read_text())["group"]
    return tuple(tuple(OptionName(name["name"], name.get("from", ""), name.get("until", "")) for name in group["names"])
                 for group in groups)


@functools.lru_cache(maxsize=8)
def kconfig_symbols(tree: Path, fingerprint: str) -> frozenset[str]:
    """Every option the tree's Kconfig files define (fingerprint: the tree's state, so an edit is seen)."""
    symbols: set[str] = set()
    for directory, subdirs, files in os.walk(tree):
        subdirs[:] = [name for name in subdirs if name not in (".git", "Documentation", "tools")]
        for name in files:
            if name.startswith("Kconfig"):
                symbols.update(_KCONFIG_SYMBOL.findall(Path(directory, name).read_text(errors="replace")))
    return frozenset("CONFIG_" + symbol for symbol in symbols)


def _group_of(option: str) -> tuple[OptionName, ...]:
    """Every name option has had, or () if it never changed its name."""
    return next((names for names in option_history() if option in [name.name for name in names]), ())


def tree_name(option: str, symbols: frozenset[str], version: str) -> str:
    """What this tree calls option: the name asked for if the tree defines it, else another name of its group."""
    group = _group_of(option)
    if option in symbols or not group:
        return option
    defined = [name for name in group if name.name in symbols]
    for candidates in (
        [name for name in defined if name.lives_in(version)], defined,
        [name for name in group if name.lives_in(version)],
    ):
        if candidates:
            return candidates[0].name
    return option


def _history_note(option: str, symbols: frozenset[str]) -> str:
    if option in symbols:
        return ""
    group = _group_of(option)
    return "this tree has no such option" + (f"; its names: {', '.join(map(str, group))}" if group else "")


def resolve_options(options: dict[str, str], symbols: frozenset[str], version: str) -> dict[str, str]:
    return {tree_name(option, symbols, version): value for option, value in options.items()}


@dataclass(frozen=True)
class ConfigRequest:
    """What the final .config must contain: gupvm's fragments, the plan's options, the user's fragments
    and options, merged in that order."""

    own: tuple[Path, ...]  # gupvm's fragments: what every test kernel needs, whatever else is asked
    user: tuple[Path, ...]
    additions: tuple[str, ...]
    checks: tuple[tuple[str, ...], ...] = ()  # each satisfied by any one of its CONFIG_X=value choices
    plan_options: tuple[str, ...] = ()  # what the plan's steps need, verified like gupvm's own
    features: tuple[Feature, ...] = ()  # what the plan's steps need of the kernel, where the tree has it

    @classmethod
    def for_plans(cls, arch: Arch, user_fragments: list[Path], additions: list[str],
                  plans: tuple[Plan, ...]) -> "ConfigRequest":
        """What a kernel that runs these plans needs: each plan's options and features."""
        return cls.for_arch(arch, user_fragments, additions,
                            tuple(dict.fromkeys(option for plan in plans for option in plan.kconfig)),
                            tuple(dict.fromkeys(feature for plan in plans for feature in plan.features)))

    @classmethod
    def for_arch(
        cls, arch: Arch, user_fragments: list[Path], additions: list[str], plan_options: tuple[str, ...] = (),
        features: tuple[Feature, ...] = (),
    ) -> "ConfigRequest":
        for fragment in user_fragments:
            check_fragment(fragment)
        for addition in additions:
            if not OPTION_LINE.match(addition):
                raise UsageError(
                    f"--kconfig-add {addition!r}: expected CONFIG_NAME=value with y, n, m, a number or a quoted string"
                )
        own = (GUP_FRAGMENT, *(KCONFIGS_DIR / fragment for fragment in arch.kconfig_fragments))
        return cls(own=own, user=tuple(user_fragments), additions=tuple(additions), checks=arch.config_checks,
                   plan_options=tuple(plan_options), features=tuple(features))

    @property
    def fragments(self) -> tuple[Path, ...]:
        return self.own + self.user

    @property
    def has_user_options(self) -> bool:
        return bool(self.user or self.additions)

    def on_tree(self, symbols: frozenset[str], version: str) -> "ConfigRequest":
        """The request as this tree can meet it: the options of each feature the tree has, after the plan's."""
        gaps = feature_gaps(self.features, symbols, version)
        had = [line for feature in self.features if feature.name not in gaps for line in feature.kconfig]
        return dataclasses.replace(self, plan_options=tuple(dict.fromkeys((*self.plan_options, *had))), features=())

    def own_only(self) -> "ConfigRequest":
        """gupvm's fragments and the plan's options, without the user's."""
        return dataclasses.replace(self, user=(), additions=())

    def layers(self) -> list[dict[str, str]]:
        """The options of each layer in merge order: gupvm's fragments, the plan's, the user's, the additions."""
        return ([parse_config(fragment.read_text()) for fragment in self.own] + [parse_config(self.plan_fragment())]
                + [parse_config(fragment.read_text()) for fragment in self.user]
                + [parse_config(self.additions_fragment())])

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
        wanted: dict[str, str] = {}
        for layer in self.layers():
            wanted.update(layer)
        return wanted

    def key(self) -> str:
        """The same for requests that ask the same of the final .config, however they ask it
        (a plan's options or --kconfig-add, a fragment or another): they merge to the same config."""
        wanted = sorted(self.requested().items())
        features = sorted(line for feature in self.features for line in feature.kconfig)
        return hashlib.sha256(repr((wanted, self.checks) + ((features,) if features else ())).encode()).hexdigest()


def feature_gaps(features: tuple[Feature, ...], symbols: frozenset[str], version: str) -> dict[str, str]:
    """Each feature this tree cannot have, and why: the options it sets that the tree's Kconfig does not define."""
    gaps = {}
    for feature in features:
        if missing := [option for option in feature.options_set if tree_name(option, symbols, version) not in symbols]:
            gaps[feature.name] = f"this tree has no {', '.join(missing)}"
    return gaps


def kernel_features(source: KernelSource, wanted: tuple[Feature, ...]) -> tuple[tuple[Feature, ...], dict[str, str]]:
    """The wanted features this tree has (and so its kernel, since the config verifies them), and why it lacks
    each of the others."""
    gaps = feature_gaps(wanted, kconfig_symbols(source.path, source.fingerprint), source.version)
    return tuple(feature for feature in wanted if feature.name not in gaps), gaps


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
    """The verified final .config, from the config cache when the same inputs made it before.

    Options are asked for by the names this tree gives them (kconfigs/option-history.toml).
    """
    symbols = kconfig_symbols(source.path, source.fingerprint)
    cache_key = hashlib.sha256(f"{source.fingerprint}\0{arch.name}\0{request.key()}".encode()).hexdigest()[:24]
    request = request.on_tree(symbols, source.version)
    cached = Cache(cache_dir).configs / f"{cache_key}.config"
    from_cache = cached.is_file()
    if from_cache:
        cached.touch()  # its last use, for 'gupvm cache prune'
        final = FinalConfig(cached.read_text())
    else:
        final = FinalConfig(_merge(source, arch, request, symbols, build_dir, log, jobs))
    switched_off = verify(resolve_options(request.needed(), symbols, source.version), final.options)
    mismatches = _mismatches(source, request, symbols, final)
    if switched_off or mismatches:
        raise _unmet(source, arch, request, symbols, switched_off, mismatches, build_dir, log, jobs)
    if not from_cache:  # only a verified config is cached, and never half-written
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(cached, final.text)
    return final


def _mismatches(source: KernelSource, request: ConfigRequest, symbols: frozenset[str],
                final: FinalConfig) -> list[Mismatch]:
    requested = resolve_options(request.requested(), symbols, source.version)
    checks = tuple(tuple(f"{tree_name(option, symbols, source.version)}={value}"
                         for option, value in (choice.split("=", 1) for choice in choices))
                   for choices in request.checks)
    return [dataclasses.replace(mismatch, note=_history_note(mismatch.option, symbols))
            for mismatch in verify(requested, final.options, checks)]


def _unmet(source: KernelSource, arch: Arch, request: ConfigRequest, symbols: frozenset[str],
           switched_off: list[Mismatch], mismatches: list[Mismatch], build_dir: Path, log: Path,
           jobs: int) -> UsageError:
    """Whose options cannot be met: the user's, or (merged without them) gupvm's own and the plan's."""
    if request.has_user_options:
        scratch = build_dir.with_name(build_dir.name + ".own-config")
        try:
            own = FinalConfig(_merge(source, arch, request.own_only(), symbols, scratch, log, jobs))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if not _mismatches(source, request.own_only(), symbols, own):
            if switched_off:
                return UsageError(
                    f"the {arch.name} config switches off what gupvm or the plan needs: "
                    + "; ".join(map(str, switched_off))
                    + " (remove the --kconfig/--kconfig-add that turns it off, or that switches off what it depends on)"
                )
            return UsageError(
                f"the {arch.name} config cannot be satisfied: " + "; ".join(map(str, mismatches))
                + " (an option whose dependencies are off is dropped: change the --kconfig/--kconfig-add that conflict)"
            )
    return UsageError(
        f"gupvm's own {arch.name} config cannot be met on Linux {source.version} ({source.identity}): "
        + "; ".join(map(str, mismatches or switched_off))
        + " (not your options: gupvm's fragments in kconfigs/ need a change for this kernel; please report it)"
    )


def _merge(source: KernelSource, arch: Arch, request: ConfigRequest, symbols: frozenset[str], build_dir: Path,
           log: Path, jobs: int) -> str:
    build_dir.mkdir(parents=True, exist_ok=True)
    # -j: the first pass also compiles the kconfig tools.
    make = ["make", "-s", f"-j{jobs}", "-C", str(source.path), f"O={build_dir}", *arch.make_variables]
    run_logged([*make, "tinyconfig"], what="make tinyconfig", log=log)
    layers = []
    for number, layer in enumerate(request.layers()):
        resolved = build_dir / f"gupvm-fragment-{number}.config"
        resolved.write_text("".join(_fragment_line(option, value) + "\n"
                                    for option, value in resolve_options(layer, symbols, source.version).items()))
        layers.append(str(resolved))
    # merge_config.sh writes its scratch files into the current directory,
    # so it runs in the build directory, never in the source tree.
    run_logged(
        [str(source.path / "scripts/kconfig/merge_config.sh"), "-m", "-O", str(build_dir),
         str(build_dir / ".config"), *layers],
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

