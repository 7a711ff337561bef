"""The cells of a run and their shards: pure functions of the command line.

A run is the product of its kernels, arches and plans; each (kernel, arch,
plan) is a cell, one JUnit testsuite. Cell ids come from the command line
alone (no tree is read), so every CI job of a pipeline computes the same
ones. A shard takes whole builds, (kernel, arch), never part of one: on a
CI system each shard is a machine of its own, and a split build would be
built twice.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.plan import plan_name

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
BUILD_COST = 4  # a cold kernel build costs about as much as four boots of a plan


@dataclass(frozen=True)
class Cell:
    kernel: str  # --kernel-src as given
    kernel_label: str  # short, unique among the run's kernels
    arch: str
    plan: str | None  # --plan as given; None for build only
    plan_label: str | None

    @property
    def id(self) -> str:
        """Stable across the jobs of a pipeline, e.g. debian-6.1/x86_64/smoke."""
        return "/".join(part for part in (self.kernel_label, self.arch, self.plan_label) if part)

    @property
    def build_id(self) -> str:
        return f"{self.kernel_label}/{self.arch}"

    @property
    def suite_name(self) -> str:
        """The JUnit testsuite name and classname: dotted for grouping, no dot inside a part (6.1 -> 6_1)."""
        return ".".join(["gupvm", *(part.replace(".", "_") for part in self.id.split("/"))])

    @property
    def file_stem(self) -> str:
        """The part of a run directory's file names that says which cell, e.g. debian-6.1-x86_64-smoke."""
        return self.id.replace("/", "-")

    @property
    def build_stem(self) -> str:
        return self.build_id.replace("/", "-")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based, as GitLab's CI_NODE_INDEX
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


def kernel_label(spec: str) -> str:
    """debian:6.1 -> debian-6.1; a tree -> its folder's name."""
    name = spec.replace(":", "-") if spec.startswith("debian:") else Path(spec).expanduser().resolve().name
    return _UNSAFE.sub("_", name) or "kernel"


def plan_label(spec: str) -> str:
    """smoke -> smoke; a plan file -> the plan's name (plan.plan_name)."""
    return _UNSAFE.sub("_", plan_name(Path(spec)) if spec.endswith(".toml") else spec)


def _unique_labels(specs: list[str], label) -> dict[str, str]:
    """A label per distinct spec; a label already taken gets -2, -3, ... in command-line order."""
    labels: dict[str, str] = {}
    for spec in specs:
        if spec in labels:
            continue
        base = candidate = label(spec)
        number = 1
        while candidate in labels.values():
            number += 1
            candidate = f"{base}-{number}"
        labels[spec] = candidate
    return labels


def product(kernels: list[str], arches: list[str], plans: list[str] | None) -> tuple[Cell, ...]:
    """Every (kernel, arch, plan), kernels slowest; a spec given twice counts once. plans None: build only."""
    kernel_labels = _unique_labels(kernels, kernel_label)
    plan_labels = _unique_labels(plans, plan_label) if plans is not None else {None: None}
    arches = list(dict.fromkeys(arches))
    return tuple(
        Cell(kernel, label, arch, plan, plan_name)
        for kernel, label in kernel_labels.items()
        for arch in arches
        for plan, plan_name in plan_labels.items()
    )


def parse_shard(text: str, environ: Mapping[str, str]) -> tuple[Shard, str]:
    """--shard I/N, or auto from GitLab's parallel: N; with a note on where it came from."""
    if text == "auto":
        index, total = environ.get("CI_NODE_INDEX"), environ.get("CI_NODE_TOTAL")
        if not (index and total):
            raise UsageError("--shard auto: CI_NODE_INDEX and CI_NODE_TOTAL are not set (GitLab sets them in a "
                             "job with 'parallel: N'); give --shard I/N")
        shard = _shard(index, total, f"--shard auto (CI_NODE_INDEX={index}, CI_NODE_TOTAL={total})")
        return shard, f"shard {shard} from CI_NODE_INDEX/CI_NODE_TOTAL"
    index, _, total = text.partition("/")
    return _shard(index, total, f"--shard {text}"), f"shard {text}"


def _shard(index: str, total: str, what: str) -> Shard:
    if not (index.isdigit() and total.isdigit() and 1 <= int(index) <= int(total)):
        raise UsageError(f"{what}: expected I/N with 1 <= I <= N, e.g. 2/3")
    return Shard(int(index), int(total))


def builds(cells: tuple[Cell, ...]) -> dict[str, tuple[Cell, ...]]:
    """The cells grouped by the kernel build they need, in run order."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.build_id, []).append(cell)
    return {build_id: tuple(group) for build_id, group in groups.items()}


def shard_numbers(cells: tuple[Cell, ...], total: int) -> dict[str, int]:
    """The shard (1-based) of each build: largest first to the least loaded shard, ties to the lowest number.

    Every input is the command line, so every shard computes the same split.
    """
    load = [0] * total
    owner: dict[str, int] = {}
    groups = builds(cells)
    order = list(groups)
    for build_id in sorted(order, key=lambda build_id: (-_cost(groups[build_id]), order.index(build_id))):
        chosen = min(range(total), key=lambda number: (load[number], number))
        load[chosen] += _cost(groups[build_id])
        owner[build_id] = chosen + 1
    return owner


def shard_cells(cells: tuple[Cell, ...], shard: Shard) -> tuple[Cell, ...]:
    """This shard's cells, whole builds, in run order."""
    owner = shard_numbers(cells, shard.total)
    return tuple(cell for cell in cells if owner[cell.build_id] == shard.index)


def _cost(group: tuple[Cell, ...]) -> int:
    return BUILD_COST + sum(1 for cell in group if cell.plan is not None)
