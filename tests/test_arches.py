import pytest

from orchestrator.arches import all_arches, select_arches
from orchestrator.errors import UsageError
from orchestrator.kconfig import parse_config
from orchestrator.paths import KCONFIGS_DIR


def test_three_x86_variants_are_known():
    assert set(all_arches()) == {"x86_64", "i386", "i386-pae"}


def test_all_selects_every_arch_once_in_a_stable_order():
    assert [arch.name for arch in select_arches(["all", "x86_64"])] == ["i386", "i386-pae", "x86_64"]
    assert [arch.name for arch in select_arches(None)] == ["x86_64"]


def test_unknown_arch_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown arch 'arm64'"):
        select_arches(["arm64"])


@pytest.mark.parametrize("name", ["x86_64", "i386", "i386-pae"])
def test_arch_data_is_consistent(name):
    arch = all_arches()[name]
    fragment = parse_config((KCONFIGS_DIR / arch.kconfig_fragment).read_text())
    assert fragment.get("CONFIG_64BIT", "n") == ("y" if arch.bits == 64 else "n")
    assert fragment.get("CONFIG_X86_PAE", "n") == ("y" if arch.pae else "n")
    assert arch.huge_page_size % arch.page_size == 0
    assert ("-m32" in arch.guest_cflags) == (arch.bits == 32)


def test_huge_page_sizes_follow_the_page_table_layout():
    arches = all_arches()
    assert arches["i386"].huge_page_size == 4 << 20  # 2-level: a PMD maps 4 MB
    assert arches["i386-pae"].huge_page_size == 2 << 20  # 3-level with 64-bit entries: 2 MB
    assert arches["x86_64"].pages_per_huge_page == 512
    assert arches["i386"].memory_mb > 896  # reaches highmem
