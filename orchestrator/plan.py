"""Test plans: data files in selftests/, one step per gup_test invocation."""

import dataclasses
import itertools
import math
import re
import string
import tomllib
from dataclasses import dataclass
from pathlib import Path

from orchestrator import features
from orchestrator.arches import Arch
from orchestrator.errors import UsageError, shown
from orchestrator.kconfig import OPTION_LINE
from orchestrator.paths import SELFTESTS_DIR

EXPECTATIONS = ("pin", "get", "any")
PLACEHOLDERS = ("huge", "huge_last", "foll_longterm")  # the arch's huge page geometry; the tree's FOLL_ flag
GUEST_REQUIREMENTS = ("hugetlb", "thp")  # what the guest's setup provides; the rest are kernel features


@dataclass(frozen=True)
class Step:
    name: str
    args: tuple[str, ...]
    expect: str  # "pin": the pin counters must move; "get": they must not; "any": they must balance
    timeout: float
    program: str = "gup_test"  # a program built from the tree's selftests, or a busybox applet
    requires: tuple[str, ...] = ()  # "hugetlb", "thp", features: skipped, with the reason, where the kernel lacks one
    ktap_cases: bool = False  # each KTAP result of the program is a testcase of its own
    before_kernel: str = ""  # skipped on this kernel version and newer ...
    before_kernel_reason: str = ""  # ... for this reason
    tmpdir: str = ""  # a guest directory the step sees as /tmp and works in (e.g. the ext4 mount), if not /tmp
    longterm: bool = False  # its pins are long-term: each page it dumps pinned must lie outside ZONE_MOVABLE and CMA
    # A regular expression for the kernel warning the step provokes on purpose (the pin limit's refusal): a splat
    # line it matches is a figure of the step, any other still fails it.
    expected_warning: str = ""

    def skip_reason(self, kernel_version: str) -> str:
        if self.before_kernel and version_tuple(kernel_version) >= version_tuple(self.before_kernel):
            return f"needs a kernel before {self.before_kernel} ({self.before_kernel_reason})"
        return ""

    def args_for(self, arch: Arch, tree_values: dict[str, str] | None = None) -> tuple[str, ...]:
        """The arguments with the arch's huge page geometry ({huge}, {huge_last}) and the tree's values
        ({foll_longterm}) filled in."""
        values = {**_geometry(arch.pages_per_huge_page), **(tree_values or {})}
        return tuple(arg.format_map(values) for arg in self.args)


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _geometry(pages_per_huge_page: int) -> dict[str, int]:
    return {"huge": pages_per_huge_page, "huge_last": pages_per_huge_page - 1}


@dataclass(frozen=True)
class Setup:
    """What the guest prepares before the steps run."""

    hugetlb_mb: int = 0  # reserved as hugetlb pages of the arch's huge page size
    thp: str = ""  # written to /sys/kernel/mm/transparent_hugepage/enabled, e.g. "always"


@dataclass(frozen=True)
class Plan:
    name: str
    description: str
    steps: tuple[Step, ...]
    setup: Setup = Setup()
    kconfig: tuple[str, ...] = ()  # CONFIG_X=value the steps need, merged after gupvm's own fragments
    # Of a plan cut down by --step, what the whole plan's steps need: its kernel stays the whole plan's, so a
    # step run alone meets the kernel it met in the plan (and reuses its build).
    whole_plan_requires: tuple[str, ...] = ()

    @property
    def features(self) -> tuple[features.Feature, ...]:
        """The kernel features the plan's steps need (kconfigs/features.toml)."""
        return features.of([*self.whole_plan_requires, *(need for step in self.steps for need in step.requires)])


def plan_name(path: Path) -> str:
    """smoke.toml and smoke.plan.toml are both the plan "smoke"."""
    return path.name.removesuffix(".toml").removesuffix(".plan")


def available_plans() -> list[str]:
    return sorted(plan_name(path) for path in SELFTESTS_DIR.glob("*.toml"))


def load_plan(name_or_path: str) -> Plan:
    """A plan by name (selftests/) or file, every key checked; bad input names its key and line."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = SELFTESTS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise UsageError(
            f"--plan {shown(name_or_path)}: no such plan; choose from {', '.join(available_plans())} "
            "or give a .toml file"
        )
    try:
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise ValueError(f"larger than {MAX_PLAN_BYTES} bytes")
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return _plan_from_data(plan_name(path), data)
    except OSError as error:
        raise UsageError(
            f"--plan {shown(path)}: cannot read it ({error.strerror}); give a readable .toml file"
        ) from None
    except (tomllib.TOMLDecodeError, ValueError) as error:
        raise UsageError(
            f"--plan {shown(path)}: invalid plan ({error}); see selftests/smoke.toml for the format"
        ) from None


MAX_PLAN_BYTES = 1 << 20
MAX_STEPS = 10000
MAX_TIMEOUT = 7 * 24 * 3600.0
THP_MODES = ("", "always", "madvise", "never")
_STEP_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")
_PROGRAM = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_VERSION = re.compile(r"\d+\.\d+(\.\d+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TOP_KEYS = ("description", "timeout", "kconfig", "setup", "step", "matrix")
_STEP_KEYS = ("name", "args", "expect", "timeout", "program", "requires", "ktap_cases", "before_kernel",
              "before_kernel_reason", "tmpdir", "longterm", "expected_warning")
_GUEST_PATH = re.compile(r"/[A-Za-z0-9_./-]{0,200}")
_SETUP_KEYS = ("hugetlb_mb", "thp")
_MATRIX_KEYS = ("axes", "timeout", "program")
_CHOICE_KEYS = ("name", "args", "requires", "expect")


def _known_keys(table: dict, known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(known)})")


def _typed(table: dict, key: str, kind: type | tuple[type, ...], where: str, default=None):
    value = table.get(key, default)
    wrong = isinstance(value, bool) and kind is not bool  # TOML true is no number
    if value is None or wrong or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}: {key} must be a {names}" + ("" if key in table else " (it is missing)"))
    return value


def _text(table: dict, key: str, where: str, default: str | None = None, limit: int = 4096) -> str:
    value = _typed(table, key, str, where, default)
    if len(value) > limit:
        raise ValueError(f"{where}: {key} is longer than {limit} characters")
    return value


def _strings(table: dict, key: str, where: str) -> list[str]:
    values = _typed(table, key, list, where, [])
    if not all(isinstance(value, str) for value in values):
        raise ValueError(f"{where}: {key} must be a list of strings (quote numbers: [\"-n\", \"512\"])")
    return values


def _timeout(table: dict, where: str, default: float) -> float:
    value = float(_typed(table, "timeout", (int, float), where, default))
    if not 0 < value <= MAX_TIMEOUT:  # also false for NaN
        raise ValueError(f"{where}: timeout must be more than 0 and at most {MAX_TIMEOUT:.0f} seconds")
    return value


def _check_arg(arg: str, where: str) -> None:
    if _CONTROL.search(arg) or len(arg) > 4096:
        raise ValueError(f"{where}: argument {arg[:40]!r} has control characters or is too long")
    for _, field, spec, conversion in string.Formatter().parse(arg):
        if field is not None and (field not in PLACEHOLDERS or spec or conversion):
            raise ValueError(f"{where}: unknown placeholder {{{field}}} in {arg!r}; known: "
                             + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS))


def _plan_from_data(name: str, data: dict) -> Plan:
    _known_keys(data, _TOP_KEYS, "plan")
    default_timeout = _timeout(data, "plan", 120.0)
    kconfig = _strings(data, "kconfig", "plan")
    for option in kconfig:
        if not OPTION_LINE.match(option):
            raise ValueError(f"plan: kconfig entry {option[:60]!r} is not CONFIG_NAME=value")
    entries = _typed(data, "step", list, "plan", [])
    if not all(isinstance(entry, dict) for entry in entries):
        raise ValueError("plan: step must be [[step]] tables")
    steps = [_step(entry, f"step {number}", default_timeout) for number, entry in enumerate(entries, start=1)]
    if "matrix" in data:
        matrix = _typed(data, "matrix", dict, "plan")
        steps += [_step(entry, f"matrix step {entry['name']!r}", default_timeout) for entry in _expand_matrix(matrix)]
    if not steps:
        raise ValueError("a plan needs at least one [[step]] or a [matrix]")
    if len(steps) > MAX_STEPS:
        raise ValueError(f"{len(steps)} steps, more than {MAX_STEPS}")
    names = [step.name for step in steps]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"step names must be unique; {duplicates[0]!r} is used more than once")
    setup_table = _typed(data, "setup", dict, "plan", {})
    _known_keys(setup_table, _SETUP_KEYS, "setup")
    hugetlb_mb = _typed(setup_table, "hugetlb_mb", int, "setup", 0)
    if not 0 <= hugetlb_mb <= 65536:
        raise ValueError("setup: hugetlb_mb must be between 0 and 65536")
    thp = _text(setup_table, "thp", "setup", "")
    if thp not in THP_MODES:
        raise ValueError(f"setup: thp must be one of {', '.join(repr(mode) for mode in THP_MODES)}")
    return Plan(name=name, description=_text(data, "description", "plan", "", limit=65536), steps=tuple(steps),
                setup=Setup(hugetlb_mb, thp), kconfig=tuple(kconfig))


def _step(entry: dict, where: str, default_timeout: float) -> Step:
    name = _text(entry, "name", where)
    if not _STEP_NAME.fullmatch(name):
        raise ValueError(f"{where}: name {name[:60]!r} must be 1 to 200 letters, digits, - and _")
    where = f"step {name}"
    _known_keys(entry, _STEP_KEYS, where)
    args = _strings(entry, "args", where)
    if "args" not in entry:
        raise ValueError(f"{where}: args is missing (give [] for none)")
    for arg in args:
        _check_arg(arg, where)
    expect = _text(entry, "expect", where)
    if expect not in EXPECTATIONS:
        raise ValueError(f"{where}: expect must be one of {', '.join(EXPECTATIONS)}")
    program = _text(entry, "program", where, "gup_test")
    if not _PROGRAM.fullmatch(program):
        raise ValueError(f"{where}: program {program[:60]!r} must be a program's name, not a path or command line")
    requires = _strings(entry, "requires", where)
    known = (*GUEST_REQUIREMENTS, *features.features())
    if unknown := sorted(set(requires) - set(known)):
        raise ValueError(f"{where}: unknown requirement {unknown[0]!r}; known: {', '.join(known)}")
    tmpdir = _text(entry, "tmpdir", where, "")
    if tmpdir and (not _GUEST_PATH.fullmatch(tmpdir) or ".." in tmpdir):
        raise ValueError(f"{where}: tmpdir must be an absolute guest path like \"/mnt/ext4\"")
    before_kernel = _text(entry, "before_kernel", where, "")
    if before_kernel and not _VERSION.fullmatch(before_kernel):
        raise ValueError(f"{where}: before_kernel must be a version like \"6.5\"")
    return Step(
        name=name,
        args=tuple(args),
        expect=expect,
        timeout=_timeout(entry, where, default_timeout),
        program=program,
        requires=tuple(requires),
        ktap_cases=_typed(entry, "ktap_cases", bool, where, False),
        before_kernel=before_kernel,
        before_kernel_reason=_text(entry, "before_kernel_reason", where, ""),
        tmpdir=tmpdir,
        longterm=_typed(entry, "longterm", bool, where, False),
        expected_warning=_pattern(entry, "expected_warning", where),
    )


def _pattern(entry: dict, key: str, where: str) -> str:
    pattern = _text(entry, key, where, "")
    try:
        re.compile(pattern)
    except re.error as error:
        raise ValueError(f"{where}: {key} is not a regular expression ({error})") from None
    return pattern


def _expand_matrix(matrix: dict) -> list[dict]:
    """One step per combination of one choice from each axis, first axis slowest."""
    _known_keys(matrix, _MATRIX_KEYS, "matrix")
    axes = _typed(matrix, "axes", list, "matrix")
    if not axes or not all(isinstance(axis, list) and axis for axis in axes):
        raise ValueError("matrix: axes must be a list of non-empty lists of choices")
    for axis in axes:
        for choice in axis:
            if not isinstance(choice, dict):
                raise ValueError("matrix: each choice must be a table like { name = \"thp\", args = [\"-t\"] }")
            _known_keys(choice, _CHOICE_KEYS, f"matrix choice {choice.get('name')!r}")
            _text(choice, "name", "matrix choice")
            _strings(choice, "args", f"matrix choice {choice['name']!r}")
            _strings(choice, "requires", f"matrix choice {choice['name']!r}")
    if math.prod(len(axis) for axis in axes) > MAX_STEPS:
        raise ValueError(f"matrix: more than {MAX_STEPS} combinations")
    steps = []
    for choices in itertools.product(*axes):
        expects = {choice["expect"] for choice in choices if "expect" in choice}
        if len(expects) != 1:
            raise ValueError("matrix: exactly one choice of each combination must say what to expect")
        steps.append({
            "name": "-".join(choice["name"] for choice in choices),
            "args": [arg for choice in choices for arg in choice.get("args", [])],
            "requires": [need for choice in choices for need in choice.get("requires", [])],
            "expect": expects.pop(),
            **{key: matrix[key] for key in ("timeout", "program") if key in matrix},
        })
    return steps


def size_label(size: int) -> str:
    """A huge page size as step names and the guest say it: 64kB, 32MB."""
    return f"{size >> 20}MB" if size >= 1 << 20 else f"{size >> 10}kB"


def hugetlbfs_mount(size: int) -> str:
    """The guest's hugetlbfs mount of that page size (protocol.py's init mounts it)."""
    return f"/mnt/hugetlb-{size_label(size)}"


def on_arch(plan: Plan, arch: Arch) -> Plan:
    """The plan as it runs on arch: a step that maps hugetlb memory (-H, at the default size) runs as it is and
    again at each of the arch's other hugetlb sizes, as <step>-<size> (hugetlb-pin_basic-64kB), each a testcase
    of its own. gup_test's -H takes only the default size, so there it maps a file of a hugetlbfs mount of that
    size instead: privately, the same anonymous huge pages -H gives (hugetlb_no_page() makes a private mapping's
    folios anonymous), and with -S the file's own pages."""
    steps = []
    for step in plan.steps:
        steps.append(step)
        if "-H" not in step.args:
            continue
        for size in arch.extra_hugetlb_sizes:
            label = size_label(size)
            geometry = _geometry(size // arch.page_size)
            args = []
            for arg in step.args:
                args += ["-f", f"{hugetlbfs_mount(size)}/{step.name}"] if arg == "-H" else \
                    [arg.format_map({**geometry, **_KEEP_TREE_VALUES})]
            steps.append(dataclasses.replace(
                step, name=f"{step.name}-{label}", args=tuple(args),
                requires=tuple(f"hugetlb-{label}" if need == "hugetlb" else need for need in step.requires)))
    return dataclasses.replace(plan, steps=tuple(steps))


# Placeholders a step fills in only on the tree (args_for), kept as they are by on_arch.
_KEEP_TREE_VALUES = {name: "{" + name + "}" for name in PLACEHOLDERS if name not in ("huge", "huge_last")}


REPEAT_MARK = "#"  # the Nth run of a step in one boot is named step#N


def base_name(step_name: str) -> str:
    """The plan step a run belongs to: 'pin_basic#3' -> 'pin_basic'."""
    return step_name.split(REPEAT_MARK, 1)[0]


def select_steps(plan: Plan, names: tuple[str, ...]) -> Plan:
    """The plan narrowed to the named steps, in the plan's order; its kernel still the whole plan's."""
    if not names:
        return plan
    known = [step.name for step in plan.steps]
    if unknown := [name for name in names if name not in known]:
        raise UsageError(f"--step {unknown[0]}: plan {plan.name} has no such step; its steps: {', '.join(known)}")
    whole = (*plan.whole_plan_requires, *(need for step in plan.steps for need in step.requires))
    return dataclasses.replace(plan, steps=tuple(step for step in plan.steps if step.name in names),
                               whole_plan_requires=whole)


def repeated(plan: Plan, times: int) -> Plan:
    """Each step run `times` times in a row in one boot: step, step#2, ..., step#N (the one way to repeat steps)."""
    steps = tuple(
        dataclasses.replace(step, name=step.name if number == 1 else f"{step.name}{REPEAT_MARK}{number}")
        for step in plan.steps
        for number in range(1, times + 1)
    )
    return dataclasses.replace(plan, steps=steps)
