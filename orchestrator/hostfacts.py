"""The host a run's timings were taken on, so that two runs can be told comparable or not."""

import subprocess
from functools import cache
from pathlib import Path

from orchestrator import interrupt
from orchestrator.arches import Arch

# Suite properties that must agree for two runs' timings to be compared as
# like with like: the host's CPU and QEMU, and what the guest was given.
COMPARED_FACTS = ("host_cpu", "qemu_version", "accel", "clock", "guest_thp")


@cache
def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@cache
def qemu_version(binary: str) -> str:
    try:
        result = interrupt.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = result.stdout.splitlines()[0] if result.stdout else "unknown"
    return first.removeprefix("QEMU emulator version ").strip()


def host_facts(arch: Arch) -> dict[str, str]:
    return {"host_cpu": cpu_model(), "qemu_version": qemu_version(arch.qemu_binary)}
