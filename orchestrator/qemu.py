"""QEMU: the command line for an arch, and choosing the accelerator.

/dev/kvm can exist and still hang a guest right after the BIOS (nested
virtualization), so 'auto' believes only a probe boot that reaches the
kernel. The answer holds until the host reboots, and is cached for that long.
"""

import ctypes
import json
import os
import signal
from pathlib import Path

import pexpect

from orchestrator.arches import Arch
from orchestrator.errors import UsageError

GUEST_CPUS = 2
ACCELS = ("auto", "kvm", "tcg")
PROBE_SECONDS = 5.0
KERNEL_BANNER = "Linux version"
_PR_SET_PDEATHSIG = 1


def qemu_command(arch: Arch, accel: str, kernel: Path, initrd: Path | None, append: str,
                 console_signals: bool = True) -> list[str]:
    """console_signals=False: Ctrl-C on the console goes to the guest instead of stopping QEMU."""
    console = ["-serial", "stdio"] if console_signals else [
        "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
    command = [
        arch.qemu_binary,
        "-machine", f"{arch.qemu_machine},accel={accel}",
        "-cpu", "host" if accel == "kvm" else "max",
        "-smp", str(GUEST_CPUS),
        "-m", str(arch.memory_mb),
        "-nodefaults", "-display", "none", *console,
        "-no-reboot",
        "-kernel", str(kernel),
        "-append", append,
    ]
    if initrd is not None:
        command += ["-initrd", str(initrd)]
    return command


def kernel_command_line(arch: Arch, *extra: str) -> str:
    # panic=-1 reboots at once on a panic, which -no-reboot turns into QEMU exiting.
    return " ".join([f"console={arch.console}", "panic=-1", *arch.kernel_args, *extra])


def _die_with_parent() -> None:
    """Run in the QEMU child: the kernel kills it if gupvm dies, however it dies."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn(command: list[str], logfile=None) -> pexpect.spawn:
    child = pexpect.spawn(
        command[0], command[1:], encoding="utf-8", codec_errors="replace",
        maxread=65536, preexec_fn=_die_with_parent, timeout=None,
    )
    child.logfile_read = logfile
    return child


def kvm_usable() -> bool:
    return os.access("/dev/kvm", os.R_OK | os.W_OK)


def choose_accel(requested: str, arch: Arch, kernel: Path, cache_dir: Path) -> str:
    if requested == "tcg":
        return "tcg"
    if requested == "kvm":
        if not kvm_usable():
            raise UsageError("--accel kvm: /dev/kvm is missing or not writable; use --accel tcg or auto")
        return "kvm"
    if not kvm_usable():
        return "tcg"
    cache_file = cache_dir / "accel-probe.json"
    key = f"{_host_boot_id()} {arch.qemu_binary}"
    known = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    if key not in known:
        known[key] = "kvm" if probe_kvm(arch, kernel) else "tcg"
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(known))
    return known[key]


def probe_kvm(arch: Arch, kernel: Path) -> bool:
    """Does a KVM guest get as far as printing the kernel banner?"""
    command = qemu_command(arch, "kvm", kernel, None, kernel_command_line(arch))
    child = spawn(command)
    try:
        return child.expect([KERNEL_BANNER, pexpect.EOF, pexpect.TIMEOUT], timeout=PROBE_SECONDS) == 0
    finally:
        child.close(force=True)


def _host_boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
