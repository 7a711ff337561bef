"""Cells and shards: pure functions of the command line."""

import itertools

import pytest

from orchestrator.cells import Shard, builds, parse_shard, product, shard_cells
from orchestrator.errors import UsageError

KERNELS = ["debian:6.1", "debian:6.12", "/src/linux", "/other/linux", "/src/linux-next"]
ARCHES = ["x86_64", "i386", "i386-pae"]
PLANS = ["smoke", "hugepage", "/plans/mine.toml"]


def test_product_is_every_kernel_arch_and_plan_with_stable_ids():
    cells = product(KERNELS, ARCHES, PLANS)
    assert len(cells) == 5 * 3 * 3
    assert len({cell.id for cell in cells}) == len(cells)
    assert cells[0].id == "debian-6.1/x86_64/smoke"
    assert cells[-1].id == "linux-next/i386-pae/mine"
    assert [cell.kernel_label for cell in cells[::9]] == ["debian-6.1", "debian-6.12", "linux", "linux-2", "linux-next"]
    assert product(KERNELS, ARCHES, PLANS) == cells  # same command line, same ids


def test_a_plan_file_is_named_without_toml_or_plan_toml():
    cells = product(["debian:6.1"], ["x86_64"], ["/plans/mine.toml", "/plans/two-steps.plan.toml"])
    assert [cell.id for cell in cells] == ["debian-6.1/x86_64/mine", "debian-6.1/x86_64/two-steps"]


def test_a_spec_given_twice_counts_once():
    assert [cell.id for cell in product(["debian:6.1", "debian:6.1"], ["x86_64", "x86_64"], ["smoke", "smoke"])] == [
        "debian-6.1/x86_64/smoke"]


def test_build_only_cells_have_no_plan():
    cells = product(["debian:6.1"], ["x86_64", "i386"], None)
    assert [cell.id for cell in cells] == ["debian-6.1/x86_64", "debian-6.1/i386"]


@pytest.mark.parametrize("cell_id, suite_name, stem", [
    ("debian-6.1/x86_64/smoke", "gupvm.debian-6_1.x86_64.smoke", "debian-6.1-x86_64-smoke"),
    ("debian-6.12/i386-pae/hugepage", "gupvm.debian-6_12.i386-pae.hugepage", "debian-6.12-i386-pae-hugepage"),
])
def test_suite_names_have_no_dot_inside_a_version(cell_id, suite_name, stem):
    (cell,) = [cell for cell in product(["debian:6.1", "debian:6.12"], ARCHES, PLANS) if cell.id == cell_id]
    assert (cell.suite_name, cell.file_stem) == (suite_name, stem)


@pytest.mark.parametrize("total", [1, 2, 3, 4, 7, 15, 16, 40])
def test_shards_partition_the_cells_and_never_split_a_build(total):
    cells = product(KERNELS, ARCHES, PLANS)
    shards = [shard_cells(cells, Shard(index, total)) for index in range(1, total + 1)]
    ran = [cell for shard in shards for cell in shard]
    assert sorted(cell.id for cell in ran) == sorted(cell.id for cell in cells)  # each exactly once
    for first, second in itertools.combinations(shards, 2):
        assert not {cell.build_id for cell in first} & {cell.build_id for cell in second}
    sizes = [len(builds(shard)) for shard in shards]
    assert max(sizes) - min(sizes) <= 1  # equal builds: as even as whole builds allow
    assert shards == [shard_cells(cells, Shard(index, total)) for index in range(1, total + 1)]  # deterministic


def test_uneven_builds_go_largest_first_to_the_least_loaded_shard():
    cells = product(["debian:6.1"], ["x86_64"], PLANS) + product(["debian:6.12"], ["x86_64", "i386"], ["smoke"])
    assert [cell.id for cell in shard_cells(cells, Shard(1, 2))] == [cell.id for cell in cells[:3]]
    assert [cell.id for cell in shard_cells(cells, Shard(2, 2))] == [cell.id for cell in cells[3:]]


def test_a_shard_keeps_run_order():
    cells = product(KERNELS, ARCHES, PLANS)
    shard = shard_cells(cells, Shard(2, 3))
    assert list(shard) == sorted(shard, key=cells.index)


@pytest.mark.parametrize("text, environ, expected, note", [
    ("2/3", {}, Shard(2, 3), "shard 2/3"),
    ("1/1", {"CI_NODE_INDEX": "5", "CI_NODE_TOTAL": "9"}, Shard(1, 1), "shard 1/1"),
    ("auto", {"CI_NODE_INDEX": "3", "CI_NODE_TOTAL": "4"}, Shard(3, 4),
     "shard 3/4 from CI_NODE_INDEX/CI_NODE_TOTAL"),
])
def test_parse_shard(text, environ, expected, note):
    assert parse_shard(text, environ) == (expected, note)


@pytest.mark.parametrize("text, environ, complaint", [
    ("0/3", {}, "1 <= I <= N"),
    ("4/3", {}, "1 <= I <= N"),
    ("2", {}, "expected I/N"),
    ("a/b", {}, "expected I/N"),
    ("auto", {}, "CI_NODE_INDEX and CI_NODE_TOTAL are not set"),
    ("auto", {"CI_NODE_INDEX": "4", "CI_NODE_TOTAL": "3"}, "CI_NODE_INDEX=4"),
])
def test_bad_shards_are_usage_errors(text, environ, complaint):
    with pytest.raises(UsageError, match=complaint):
        parse_shard(text, environ)
