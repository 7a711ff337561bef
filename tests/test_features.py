"""Kernel features a plan's steps need: asked of the tree's Kconfig; where it lacks an option, skipped naming it."""

import re
import subprocess
from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.config import ConfigRequest, feature_gaps
from orchestrator.features import features, of
from orchestrator.gup_programs import plan_commands, tree_programs, tree_values
from orchestrator.plan import load_plan, select_steps
from orchestrator.protocol import kernel_args, render_init

X86_64 = all_arches()["x86_64"]
PINNING = load_plan("pinning")


def test_the_pinning_plan_needs_the_plumbing_the_issue_names():
    needed = {feature.name for feature in PINNING.features}
    assert needed == {"movable", "shmem", "madvise", "io_uring", "ext4", "secretmem", "cross_memory_attach", "udmabuf"}


def test_smoke_needs_no_feature_so_its_kernel_is_unchanged():
    assert load_plan("smoke").features == ()
    assert ConfigRequest.for_plans(X86_64, [], [], (load_plan("smoke"),)).key() == \
        ConfigRequest.for_arch(X86_64, [], []).key()


def test_a_tree_without_an_option_a_feature_sets_lacks_the_feature():
    symbols = frozenset({"CONFIG_SHMEM", "CONFIG_TMPFS", "CONFIG_MEMFD_CREATE", "CONFIG_EXPERT"})
    gaps = feature_gaps(of(["shmem", "secretmem"]), symbols, "5.10.0")
    assert gaps == {"secretmem": "this tree has no CONFIG_SECRETMEM"}


def test_an_option_a_feature_switches_off_may_be_gone_from_the_tree():
    # CONFIG_EMBEDDED hid SECRETMEM until 6.2 and is gone from 6.12.
    symbols = frozenset({"CONFIG_SECRETMEM", "CONFIG_EXPERT"})
    assert feature_gaps(of(["secretmem"]), symbols, "6.12.0") == {}


def test_on_a_tree_only_the_features_it_has_are_asked_for():
    request = ConfigRequest.for_plans(X86_64, [], [], (PINNING,))
    symbols = frozenset(option.split("=")[0] for feature in PINNING.features for option in feature.kconfig
                        if "SECRETMEM" not in option)
    on_tree = request.on_tree(symbols, "5.10.0")
    assert on_tree.requested()["CONFIG_IO_URING"] == "y"
    assert "CONFIG_SECRETMEM" not in on_tree.requested()
    assert "CONFIG_IO_URING" not in request.requested()  # nothing asked before the tree is known


def test_a_step_needing_a_feature_the_tree_lacks_is_skipped_naming_the_option():
    commands = plan_commands(PINNING, X86_64, "5.10.0", {}, {"secretmem": "this tree has no CONFIG_SECRETMEM"})
    reasons = {step.name: command.skip_reason for step, command in zip(PINNING.steps, commands, strict=True)}
    assert reasons["memfd_secret"].startswith("needs secretmem: this tree has no CONFIG_SECRETMEM")
    assert "needs" not in reasons["movable-pin_longterm"]


def test_the_guest_prepares_each_feature_it_has_and_gets_its_kernel_arguments(tmp_path: Path):
    available = of(["ext4", "movable", "io_uring"])
    (tmp_path / "gup_longterm.c").write_text("int main(void) {}\n")
    commands = plan_commands(PINNING, X86_64, "7.3.0", tree_programs(tmp_path), {}, {"foll_longterm": "0x100"})
    init = render_init(PINNING, X86_64, commands, available)
    assert "prepare ext4 ext4_on_ram_disk" in init
    assert "step 9 gup_longterm-ext4 shmem,io_uring,ext4 /mnt/ext4 gup_longterm" in init
    assert set(kernel_args(PINNING, X86_64, available)) >= {"movablecore=256M", "brd.rd_nr=2"}


@pytest.mark.parametrize("header, text, value", [
    ("include/linux/mm.h", "/* FOLL_LONGTERM is ... */\n#define FOLL_LONGTERM\t0x10000\t/* ... */\n", "0x10000"),
    ("include/linux/mm_types.h", " * FOLL_LONGTERM may be used\n\tFOLL_LONGTERM = 1 << 8,\n", "0x100"),
])
def test_the_foll_longterm_bit_is_read_from_the_tree(tmp_path: Path, header, text, value):
    (tmp_path / header).parent.mkdir(parents=True)
    (tmp_path / header).write_text(text)
    assert tree_values(tmp_path) == {"foll_longterm": value}


def test_a_tree_that_defines_no_foll_longterm_skips_the_steps_that_use_it():
    commands = plan_commands(PINNING, X86_64, "7.3.0", {}, {}, {})
    by_name = {step.name: command for step, command in zip(PINNING.steps, commands, strict=True)}
    assert by_name["movable-dump-longterm"].skip_reason == "this tree defines no foll_longterm"


def test_every_feature_explains_itself():
    for feature in features().values():
        assert feature.why and feature.options_set, feature.name


def _init_functions() -> str:
    """The guest init's shell functions, without the commands that set the guest up."""
    init = render_init(PINNING, X86_64, plan_commands(PINNING, X86_64, "7.3.0", {}, {}, {"foll_longterm": "0x100"}))
    return "\n".join(re.findall(r"(?ms)^\w+\(\) \{\n.*?^\}\n", init))


@pytest.mark.parametrize("requires, said", [
    ("-", ""),  # a step that needs nothing
    ("ext4", ""),  # a feature whose set-up went well
    ("io_uring,ext4", ""),
    ("movable,ext4_broken", "ext4_broken: mke2fs failed"),
    ("hugetlb", "hugetlb: asked for 8 huge pages, the kernel reserved 0"),
    ("thp", ""),
    ("hugetlb-64kB", ""),  # the boot reserved every page of that size asked for
    ("hugetlb-32MB", "hugetlb 32MB: asked for 4 huge pages, the kernel reserved 1"),
    ("hugetlb-1GB", "hugetlb 1GB: asked for 0 huge pages, the kernel reserved 0"),  # a size the arch has not
])
def test_the_guests_unmet_names_exactly_what_a_step_lacks(requires, said):
    script = (_init_functions() + 'hugetlb_pages=0 asked_hugetlb=8 thp=always\nunprepared_ext4_broken="mke2fs failed"\n'
              'hugetlb_pages_64kB=2048 hugetlb_asked_64kB=2048 hugetlb_pages_32MB=1 hugetlb_asked_32MB=4\n'
              f'unmet "{requires}"\n')
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == said and not result.stderr


def test_a_step_run_alone_gets_the_whole_plans_kernel():
    alone = select_steps(PINNING, ("pin_limit-io_uring",))
    assert [step.name for step in alone.steps] == ["pin_limit-io_uring"]
    assert alone.features == PINNING.features


def test_the_pinning_end_to_end_plan_gets_the_pinning_plans_kernel():
    broken = load_plan(str(Path(__file__).parent / "data/pinning-broken.plan.toml"))
    assert sorted(feature.name for feature in broken.features) == sorted(feature.name for feature in PINNING.features)
