from pathlib import Path

import pytest

from orchestrator import qemu
from orchestrator.arches import all_arches
from orchestrator.errors import UsageError

ARCHES = all_arches()


def test_command_line_per_arch():
    command = qemu.qemu_command(ARCHES["i386-pae"], "tcg", Path("/k"), Path("/i"), "console=ttyS0")
    assert command[0] == "qemu-system-i386"
    assert command[command.index("-m") + 1] == "1536"
    assert command[command.index("-machine") + 1] == "pc,accel=tcg"
    assert command[command.index("-cpu") + 1] == "max"
    assert "-no-reboot" in command  # the guest's reboot ends QEMU
    assert command[command.index("-initrd") + 1] == "/i"
    kvm = qemu.qemu_command(ARCHES["x86_64"], "kvm", Path("/k"), None, "")
    assert kvm[0] == "qemu-system-x86_64" and kvm[kvm.index("-cpu") + 1] == "host" and "-initrd" not in kvm


def test_kernel_command_line_reboots_on_panic():
    line = qemu.kernel_command_line(ARCHES["x86_64"], "gupvm.first=3")
    assert line.split() == ["console=ttyS0", "panic=-1", "tsc=reliable", "gupvm.first=3"]


def test_tcg_is_never_probed(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(qemu, "probe_kvm", lambda *args: pytest.fail("probed"))
    assert qemu.choose_accel("tcg", ARCHES["x86_64"], Path("/k"), tmp_path) == "tcg"


def test_kvm_asked_without_a_usable_dev_kvm_is_a_usage_error(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(qemu, "kvm_usable", lambda: False)
    with pytest.raises(UsageError, match="--accel kvm: /dev/kvm"):
        qemu.choose_accel("kvm", ARCHES["x86_64"], Path("/k"), tmp_path)


def test_auto_probes_once_per_host_boot_and_believes_the_probe(monkeypatch, tmp_path: Path):
    probes = []
    monkeypatch.setattr(qemu, "kvm_usable", lambda: True)
    monkeypatch.setattr(qemu, "probe_kvm", lambda arch, kernel: probes.append(arch.name) or False)
    for _ in range(2):
        assert qemu.choose_accel("auto", ARCHES["x86_64"], Path("/k"), tmp_path) == "tcg"
    assert probes == ["x86_64"]
    monkeypatch.setattr(qemu, "probe_kvm", lambda arch, kernel: probes.append(arch.name) or True)
    assert qemu.choose_accel("auto", ARCHES["i386"], Path("/k"), tmp_path) == "kvm"
    assert probes == ["x86_64", "i386"]


def test_auto_without_dev_kvm_is_tcg(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(qemu, "kvm_usable", lambda: False)
    assert qemu.choose_accel("auto", ARCHES["x86_64"], Path("/k"), tmp_path) == "tcg"


def test_icount_is_data_on_the_command_line():
    command = qemu.qemu_command(ARCHES["x86_64"], "tcg", Path("/k"), None, "", qemu.CLOCKS["icount"])
    assert command[command.index("-icount") + 1] == "shift=5,sleep=off"
    assert "-icount" not in qemu.qemu_command(ARCHES["x86_64"], "tcg", Path("/k"), None, "")


def test_clock_auto_follows_the_accelerator_and_icount_asks_for_tcg(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(qemu, "kvm_usable", lambda: True)
    monkeypatch.setattr(qemu, "probe_kvm", lambda arch, kernel: True)
    x86_64 = ARCHES["x86_64"]
    assert qemu.choose_clock_and_accel("auto", "auto", x86_64, Path("/k"), tmp_path) == (qemu.CLOCKS["realtime"], "kvm")
    assert qemu.choose_clock_and_accel("auto", "tcg", x86_64, Path("/k"), tmp_path) == (qemu.CLOCKS["icount"], "tcg")
    assert qemu.choose_clock_and_accel("icount", "auto", x86_64, Path("/k"), tmp_path) == (qemu.CLOCKS["icount"], "tcg")
    assert qemu.choose_clock_and_accel("realtime", "tcg", x86_64, Path("/k"), tmp_path)[1] == "tcg"
    with pytest.raises(UsageError, match="--clock icount cannot run under --accel kvm"):
        qemu.choose_clock_and_accel("icount", "kvm", x86_64, Path("/k"), tmp_path)


def test_an_arch_that_livelocks_with_two_vcpus_under_icount_gets_its_own_count():
    def cpus(arch: str, clock: str) -> str:
        command = qemu.qemu_command(ARCHES[arch], "tcg", Path("/k"), None, "", qemu.CLOCKS[clock])
        return command[command.index("-smp") + 1]
    assert (cpus("armv7-lpae", "icount"), cpus("armv7-lpae", "realtime")) == ("1", "2")
    assert (cpus("armv7", "icount"), cpus("armv7", "realtime")) == ("1", "2")
    assert (cpus("x86_64", "icount"), cpus("arm64", "icount")) == ("2", "2")
