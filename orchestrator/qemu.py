"""QEMU: the command line for an arch, and choosing the accelerator.

/dev/kvm can exist and still hang a guest right after the BIOS (nested
virtualization), so 'auto' believes only a probe boot that reaches the
kernel. The answer holds until the host reboots, and is cached for that long.
"""

import ctypes
import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pexpect

from orchestrator import interrupt
from orchestrator.arches import Arch
from orchestrator.errors import InfrastructureError, UsageError
from orchestrator.layout import Cache

GUEST_CPUS = 2
ACCELS = ("auto", "kvm", "tcg")


@dataclass(frozen=True)
class Clock:
    """What the guest's clock counts, and so what its timings mean."""

    name: str
    qemu_args: tuple[str, ...]
    accels: tuple[str, ...]  # the accelerators it can run under
    description: str


# icount: the guest clock advances 2^5 ns per instruction and never while the
# guest sleeps; TCG then runs every vCPU on one host thread. Timings count the
# work done, not the host's load.
CLOCKS = {
    "icount": Clock("icount", ("-icount", "shift=5,sleep=off"), ("tcg",),
                    "instruction-counted guest time (QEMU -icount shift=5,sleep=off)"),
    "realtime": Clock("realtime", (), ("tcg", "kvm"), "real time"),
}
DEFAULT_CLOCK = {"kvm": "realtime", "tcg": "icount"}  # per accelerator, for --clock auto
PROBE_SECONDS = 5.0
KERNEL_BANNER = "Linux version"
_PR_SET_PDEATHSIG = 1


def qemu_command(
    arch: Arch, accel: str, kernel: Path, initrd: Path | None, append: str, clock: Clock = CLOCKS["realtime"],
    console_signals: bool = True,
) -> list[str]:
    """console_signals=False: Ctrl-C on the console goes to the guest instead of stopping QEMU."""
    console = ["-serial", "stdio"] if console_signals else [
        "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
    command = [
        arch.qemu_binary,
        "-machine", f"{arch.qemu_machine},accel={accel}",
        "-cpu", "host" if accel == "kvm" else arch.qemu_cpu,
        "-smp", str(arch.icount_cpus if clock.name == "icount" else GUEST_CPUS),
        "-m", str(arch.memory_mb),
        "-nodefaults", "-display", "none", *console,
        "-no-reboot",
        "-kernel", str(kernel),
        "-append", append,
        *clock.qemu_args,
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


@contextmanager
def running(command: list[str], logfile=None) -> Iterator[pexpect.spawn]:
    """QEMU on a pty, in a session (so a process group) of its own; gone when this ends, however it ends."""
    try:
        child = pexpect.spawn(
            command[0], command[1:], encoding="utf-8", codec_errors="replace",
            maxread=65536, preexec_fn=_die_with_parent, timeout=None,
        )
    except pexpect.ExceptionPexpect as error:
        raise InfrastructureError(f"cannot start {command[0]} ({error}): is QEMU installed? "
                                  "apt-get install qemu-system-x86") from None
    child.logfile_read = logfile
    with interrupt.process_group(child.pid):
        try:
            yield child
        finally:
            child.close(force=True)


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
    cache_file = Cache(cache_dir).accel_probe
    key = f"{_host_boot_id()} {arch.qemu_binary}"
    known = json.loads(cache_file.read_text()) if cache_file.is_file() else {}
    if key not in known:
        known[key] = "kvm" if probe_kvm(arch, kernel) else "tcg"
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(known))
    return known[key]


def accel_for_clock(requested_clock: str, requested_accel: str) -> str:
    """The accelerator to ask for: a clock that runs under one accelerator only picks it for 'auto'."""
    if requested_clock == "auto":
        return requested_accel
    clock = CLOCKS[requested_clock]
    if requested_accel not in ("auto", *clock.accels):
        raise UsageError(f"--clock {clock.name} cannot run under --accel {requested_accel}; "
                         f"use --accel {' or '.join(clock.accels)}")
    return clock.accels[0] if requested_accel == "auto" and len(clock.accels) == 1 else requested_accel


def choose_clock_and_accel(
    requested_clock: str, requested_accel: str, arch: Arch, kernel: Path, cache_dir: Path
) -> tuple[Clock, str]:
    accel = choose_accel(accel_for_clock(requested_clock, requested_accel), arch, kernel, cache_dir)
    return CLOCKS[DEFAULT_CLOCK[accel] if requested_clock == "auto" else requested_clock], accel


def probe_kvm(arch: Arch, kernel: Path) -> bool:
    """Does a KVM guest get as far as printing the kernel banner?"""
    command = qemu_command(arch, "kvm", kernel, None, kernel_command_line(arch))
    with running(command) as child:
        return child.expect([KERNEL_BANNER, pexpect.EOF, pexpect.TIMEOUT], timeout=PROBE_SECONDS) == 0


def _host_boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
