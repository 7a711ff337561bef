from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.config import ConfigRequest, kconfig_symbols, option_history, resolve_options, tree_name
from orchestrator.errors import UsageError
from orchestrator.kconfig import Mismatch, parse_config, verify

X86_64 = all_arches()["x86_64"]


def test_parse_config_reads_set_unset_and_strings():
    text = 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=0x10\n# comment\n'
    assert parse_config(text) == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"x y"', "CONFIG_D": "0x10"}


def test_verify_names_each_option_with_asked_and_actual_value():
    final = {"CONFIG_A": "y", "CONFIG_B": "m"}
    mismatches = verify({"CONFIG_A": "y", "CONFIG_B": "y", "CONFIG_C": "y", "CONFIG_D": "n"}, final)
    assert mismatches == [Mismatch("CONFIG_B", "y", "m"), Mismatch("CONFIG_C", "y", "n")]
    assert str(mismatches[1]) == "CONFIG_C: asked y, got n"


def test_requested_options_later_fragments_and_additions_win(tmp_path: Path):
    user = tmp_path / "user.config"
    user.write_text("CONFIG_DEBUG_VM=n\nCONFIG_KASAN=y\n")
    request = ConfigRequest.for_arch(X86_64, [user], ["CONFIG_KASAN=n", "CONFIG_NR_CPUS=4"])
    wanted = request.requested()
    assert wanted["CONFIG_GUP_TEST"] == "y"  # from gup.config
    assert wanted["CONFIG_64BIT"] == "y"  # from the arch fragment
    assert wanted["CONFIG_DEBUG_VM"] == "n"  # user fragment beats gup.config
    assert wanted["CONFIG_KASAN"] == "n"  # --kconfig-add beats the user fragment
    assert wanted["CONFIG_NR_CPUS"] == "4"


def test_additions_are_written_as_kconfig_lines():
    request = ConfigRequest.for_arch(X86_64, [], ["CONFIG_A=n", 'CONFIG_B="s"'])
    assert request.additions_fragment() == '# CONFIG_A is not set\nCONFIG_B="s"\n'


def test_request_key_changes_with_inputs(tmp_path: Path):
    one = ConfigRequest.for_arch(X86_64, [], ["CONFIG_A=y"])
    two = ConfigRequest.for_arch(X86_64, [], ["CONFIG_A=n"])
    assert one.key() != two.key()
    assert one.key() == ConfigRequest.for_arch(X86_64, [], ["CONFIG_A=y"]).key()


@pytest.mark.parametrize("addition", ["DEBUG_VM=y", "CONFIG_DEBUG_VM", "CONFIG_X=yes please", "CONFIG_X=\"open"])
def test_malformed_addition_is_a_usage_error(addition):
    with pytest.raises(UsageError, match="--kconfig-add"):
        ConfigRequest.for_arch(X86_64, [], [addition])


def test_missing_fragment_is_a_usage_error(tmp_path: Path):
    with pytest.raises(UsageError, match="no such file"):
        ConfigRequest.for_arch(X86_64, [tmp_path / "absent.config"], [])


def test_a_check_is_met_by_any_of_its_choices():
    checks = (("CONFIG_GUP_GET_PTE_LOW_HIGH=y", "CONFIG_GUP_GET_PXX_LOW_HIGH=y"),)
    assert verify({}, {"CONFIG_GUP_GET_PXX_LOW_HIGH": "y"}, checks) == []
    assert verify({}, {"CONFIG_GUP_GET_PTE_LOW_HIGH": "y"}, checks) == []
    (mismatch,) = verify({}, {}, checks)
    assert str(mismatch) == "CONFIG_GUP_GET_PTE_LOW_HIGH or CONFIG_GUP_GET_PXX_LOW_HIGH: asked y / y, got n / n"


def test_pae_arch_checks_the_split_pte_read():
    pae = all_arches()["i386-pae"]
    request = ConfigRequest.for_arch(pae, [], [])
    assert request.checks == pae.config_checks and "CONFIG_GUP_GET_PXX_LOW_HIGH=y" in request.checks[0]
    assert ConfigRequest.for_arch(all_arches()["i386"], [], []).checks == ()


# What each tree in the range defines of the renamed options (read from the
# trees' Kconfig files: mm/Kconfig and arch/x86/Kconfig of 5.10, 6.1, 6.12,
# 7.2 and 7.3-rc7), with an option every tree has.
DEFINED = {
    "5.10.262": {"CONFIG_GUP_BENCHMARK", "CONFIG_HIGHMEM64G", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PTE_LOW_HIGH",
                 "CONFIG_PROC_SYSCTL", "CONFIG_SYSCTL"},
    "6.1.176": {"CONFIG_GUP_TEST", "CONFIG_HIGHMEM64G", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PTE_LOW_HIGH",
                "CONFIG_PROC_SYSCTL", "CONFIG_SYSCTL"},
    "6.12.107": {"CONFIG_GUP_TEST", "CONFIG_HIGHMEM64G", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PXX_LOW_HIGH",
                 "CONFIG_PROC_SYSCTL", "CONFIG_SYSCTL"},
    "7.2.13": {"CONFIG_GUP_TEST", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PXX_LOW_HIGH", "CONFIG_PROC_SYSCTL",
               "CONFIG_SYSCTL"},
    "7.3.0": {"CONFIG_GUP_TEST", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PXX_LOW_HIGH", "CONFIG_SYSCTL"},
}


@pytest.mark.parametrize(("version", "expected"), [
    ("5.10.262", ("CONFIG_GUP_BENCHMARK", "CONFIG_HIGHMEM64G", "CONFIG_GUP_GET_PTE_LOW_HIGH")),
    ("6.1.176", ("CONFIG_GUP_TEST", "CONFIG_HIGHMEM64G", "CONFIG_GUP_GET_PTE_LOW_HIGH")),
    ("6.12.107", ("CONFIG_GUP_TEST", "CONFIG_HIGHMEM64G", "CONFIG_GUP_GET_PXX_LOW_HIGH")),
    ("7.2.13", ("CONFIG_GUP_TEST", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PXX_LOW_HIGH")),
    ("7.3.0", ("CONFIG_GUP_TEST", "CONFIG_HIGHMEM4G", "CONFIG_GUP_GET_PXX_LOW_HIGH")),
])
def test_each_option_resolves_to_the_name_the_tree_defines(version, expected):
    symbols = frozenset(DEFINED[version] | {"CONFIG_DEBUG_VM"})
    for asked in (("CONFIG_GUP_TEST", "CONFIG_HIGHMEM64G", "CONFIG_GUP_GET_PXX_LOW_HIGH"),
                  ("CONFIG_GUP_BENCHMARK", "CONFIG_HIGHMEM64G", "CONFIG_GUP_GET_PTE_LOW_HIGH")):
        assert tuple(tree_name(option, symbols, version) for option in asked) == expected
    assert tree_name("CONFIG_DEBUG_VM", symbols, version) == "CONFIG_DEBUG_VM"


def test_proc_sysctl_is_sysctl_from_7_3():
    for version, name in (("6.1.176", "CONFIG_PROC_SYSCTL"), ("7.2.13", "CONFIG_PROC_SYSCTL"),
                          ("7.3.0", "CONFIG_SYSCTL")):
        assert tree_name("CONFIG_PROC_SYSCTL", frozenset(DEFINED[version]), version) == name


def test_the_tree_outranks_its_makefile_version():
    # A commit in the 6.15 merge window still says 6.14, and HIGHMEM64G is already gone.
    assert tree_name("CONFIG_HIGHMEM64G", frozenset({"CONFIG_HIGHMEM4G"}), "6.14.0") == "CONFIG_HIGHMEM4G"
    # A tree that defines no name of the group gets the name of its version, for the message.
    assert tree_name("CONFIG_GUP_TEST", frozenset(), "5.10.1") == "CONFIG_GUP_BENCHMARK"


def test_version_ranges_of_each_group_do_not_overlap_and_cover_the_range():
    for names in option_history():
        for version in ("5.10.0", "5.11.0", "6.1.0", "6.2.0", "6.14.0", "6.15.0", "7.2.0", "7.3.0"):
            assert sum(name.lives_in(version) for name in names) == 1, (names, version)


def test_resolving_keeps_values_and_order():
    symbols = frozenset(DEFINED["7.3.0"])
    options = {"CONFIG_64BIT": "n", "CONFIG_HIGHMEM64G": "y", "CONFIG_X86_PAE": "y"}
    assert list(resolve_options(options, symbols, "7.3.0").items()) == [
        ("CONFIG_64BIT", "n"), ("CONFIG_HIGHMEM4G", "y"), ("CONFIG_X86_PAE", "y")]


def test_kconfig_symbols_read_config_and_menuconfig_lines(tmp_path: Path):
    (tmp_path / "mm").mkdir()
    (tmp_path / "mm/Kconfig").write_text("config GUP_TEST\n\tbool\nmenuconfig TRANSPARENT_HUGEPAGE\n"
                                         "\thelp\n\t  config NOT_THIS one\n")
    (tmp_path / "Documentation").mkdir()
    (tmp_path / "Documentation/Kconfig").write_text("config DOCS_ONLY\n")
    assert kconfig_symbols(tmp_path, "x") == {"CONFIG_GUP_TEST", "CONFIG_TRANSPARENT_HUGEPAGE"}


def test_an_unmet_config_blames_whoever_caused_it(tmp_path: Path, monkeypatch):
    """Merged without the user's options too: if gupvm's own still fail, the fault is gupvm's, on that version."""
    from orchestrator import config
    from orchestrator.source import KernelSource

    tree = tmp_path / "linux"
    (tree / "mm").mkdir(parents=True)
    (tree / "mm/Kconfig").write_text("config GUP_TEST\nconfig DEBUG_FS\n")
    source = KernelSource(tree, "tree:test", "f00d", "slot", "6.1.0")
    own = ConfigRequest.for_arch(X86_64, [], [])
    final_without_gup_test = "".join(f"{option}={value}\n" for option, value in own.requested().items()
                                     if option != "CONFIG_GUP_TEST")
    monkeypatch.setattr(config, "_merge", lambda *args: final_without_gup_test)
    configure = config.configure
    with pytest.raises(UsageError, match=r"^gupvm's own x86_64 config cannot be met on Linux 6.1.0 .*CONFIG_GUP_TEST"):
        configure(source, X86_64, own, tmp_path / "b", tmp_path / "c", tmp_path / "log", 1)
    with_user = ConfigRequest.for_arch(X86_64, [], ["CONFIG_DEBUG_FS=n"])
    with pytest.raises(UsageError, match=r"^gupvm's own x86_64 config cannot be met"):
        configure(source, X86_64, with_user, tmp_path / "b", tmp_path / "c", tmp_path / "log", 1)

    def merge_honouring_the_user(source, arch, request, *rest):
        return "".join(f"{option}={value}\n" for option, value in request.requested().items()
                       if not (request.additions and option == "CONFIG_GUP_TEST"))

    monkeypatch.setattr(config, "_merge", merge_honouring_the_user)
    with pytest.raises(UsageError, match=r"^the x86_64 config switches off what gupvm .*CONFIG_GUP_TEST: asked y"):
        configure(source, X86_64, with_user, tmp_path / "b", tmp_path / "c", tmp_path / "log", 1)


def test_what_gupvm_and_the_plan_need_is_not_what_the_user_may_switch_off():
    request = ConfigRequest.for_arch(X86_64, [], ["CONFIG_GUP_TEST=n"], plan_options=("CONFIG_LKDTM=y",))
    assert request.requested()["CONFIG_GUP_TEST"] == "n"  # the user's request wins the merge ...
    final = {**request.requested(), "CONFIG_LKDTM": "n"}
    # ... and is then refused: gupvm's own fragment and the plan's options must hold in the final .config
    assert verify(request.needed(), final) == [
        Mismatch("CONFIG_GUP_TEST", "y", "n"), Mismatch("CONFIG_LKDTM", "y", "n")]


def test_plan_options_are_merged_after_gupvms_fragments_and_before_the_users(tmp_path: Path):
    user = tmp_path / "user.config"
    user.write_text("CONFIG_LKDTM=n\n")
    request = ConfigRequest.for_arch(X86_64, [user], [], plan_options=("CONFIG_LKDTM=y",))
    assert request.plan_fragment() == "CONFIG_LKDTM=y\n"
    assert request.requested()["CONFIG_LKDTM"] == "n"
    assert request.key() == ConfigRequest.for_arch(X86_64, [user], []).key()  # the same asked: one build


def test_requests_asking_the_same_share_a_key_and_so_a_build_directory(tmp_path: Path):
    by_plan = ConfigRequest.for_arch(X86_64, [], [], plan_options=("CONFIG_LKDTM=y",))
    fragment = tmp_path / "lkdtm.config"
    fragment.write_text("# LKDTM\nCONFIG_LKDTM=y\n")
    assert by_plan.key() == ConfigRequest.for_arch(X86_64, [], ["CONFIG_LKDTM=y"]).key()
    assert by_plan.key() == ConfigRequest.for_arch(X86_64, [fragment], []).key()
    assert by_plan.key() != ConfigRequest.for_arch(X86_64, [], []).key()
