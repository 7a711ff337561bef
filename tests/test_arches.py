from pathlib import Path

import pytest

from orchestrator.arches import all_arches, select_arches
from orchestrator.errors import UsageError
from orchestrator.kconfig import parse_config
from orchestrator.paths import KCONFIGS_DIR

ARCHES = ["arm64", "armv7", "armv7-lpae", "i386", "i386-pae", "x86_64"]


def fragments(arch) -> dict[str, str]:
    options: dict[str, str] = {}
    for fragment in arch.kconfig_fragments:
        options.update(parse_config((KCONFIGS_DIR / fragment).read_text()))
    return options


def test_six_arches_are_known():
    assert sorted(all_arches()) == ARCHES


def test_all_selects_every_arch_once_in_a_stable_order():
    assert [arch.name for arch in select_arches(["all", "x86_64"])] == ARCHES
    assert [arch.name for arch in select_arches(None)] == ["x86_64"]
    assert [arch.name for arch in select_arches(["armv7", "arm64", "armv7"])] == ["armv7", "arm64"]


def test_unknown_arch_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown arch 'riscv64': choose from arm64, armv7, armv7-lpae, i386"):
        select_arches(["riscv64"])


@pytest.mark.parametrize("name", ARCHES)
def test_arch_data_is_consistent(name):
    arch = all_arches()[name]
    options = fragments(arch)
    # 32-bit kernels: static glibc with threads needs the 32-bit time syscalls.
    assert (options.get("CONFIG_COMPAT_32BIT_TIME") == "y") == (arch.bits == 32)
    # 64-bit page table entries on a 32-bit CPU: x86's PAE, ARM's LPAE.
    assert (options.get("CONFIG_X86_PAE") == "y" or options.get("CONFIG_ARM_LPAE") == "y") == arch.pae
    assert arch.huge_page_size % arch.page_size == 0
    assert all(size % arch.page_size == 0 and size != arch.huge_page_size for size in arch.extra_hugetlb_sizes)
    # Every guest but the host's own kind is built by a cross compiler, which knows its target's bits.
    assert bool(arch.cross_compile) == (arch.name != "x86_64")
    assert arch.make_variables == (f"ARCH={arch.make_arch}", f"CROSS_COMPILE={arch.cross_compile}")
    assert arch.compiler.endswith("gcc")


def test_huge_page_sizes_follow_the_page_table_layout():
    arches = all_arches()
    assert arches["i386"].huge_page_size == 4 << 20  # 2-level: a PMD maps 4 MB
    assert arches["i386-pae"].huge_page_size == 2 << 20  # 3-level with 64-bit entries: 2 MB
    assert arches["armv7-lpae"].huge_page_size == 2 << 20
    assert arches["x86_64"].pages_per_huge_page == 512
    # arm64's 4K granule: contiguous PTEs (16 x 4K) and contiguous PMDs (16 x 2M) beside the PMD.
    assert arches["arm64"].extra_hugetlb_sizes == (64 << 10, 32 << 20)
    assert arches["i386"].memory_mb > 896  # reaches highmem
    assert arches["armv7-lpae"].memory_mb > 768 and arches["armv7"].memory_mb > 768  # beyond ARM's lowmem


def test_armv7_without_lpae_has_no_huge_pages_and_says_so_in_its_config():
    armv7 = all_arches()["armv7"]
    assert armv7.huge_page_size == 0 and armv7.hugetlb_pages(128) == 0
    assert {option: fragments(armv7)[option] for option in ("CONFIG_HUGETLBFS", "CONFIG_TRANSPARENT_HUGEPAGE",
                                                             "CONFIG_ARM_LPAE")} == {
        "CONFIG_HUGETLBFS": "n", "CONFIG_TRANSPARENT_HUGEPAGE": "n", "CONFIG_ARM_LPAE": "n"}
    assert all_arches()["armv7-lpae"].hugetlb_pages(128) == 64


def test_armv7_lpae_asks_for_lpae_and_highmem():
    options = fragments(all_arches()["armv7-lpae"])
    assert (options["CONFIG_ARM_LPAE"], options["CONFIG_HIGHMEM"]) == ("y", "y")


def test_every_guest_debian_architecture_is_one_the_private_apt_state_reads():
    assert {arch.deb_arch for arch in all_arches().values()} == {"amd64", "i386", "arm64", "armhf"}


def test_setup_installs_every_arch_s_compiler_and_qemu():
    setup = (Path(__file__).parent.parent / "ci/setup-debian.sh").read_text().split()
    for arch in all_arches().values():
        for _, packages in arch.host_tools():
            assert set(packages.split()) <= set(setup), (arch.name, packages)
