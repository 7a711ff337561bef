from pathlib import Path

import pytest

from orchestrator.arches import all_arches
from orchestrator.config import ConfigRequest, Mismatch, parse_config, verify
from orchestrator.errors import UsageError

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
    assert request.checks == pae.config_checks and "CONFIG_GUP_GET_PTE_LOW_HIGH=y" in request.checks[0]
    assert ConfigRequest.for_arch(all_arches()["i386"], [], []).checks == ()


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
