"""Replaying a captured console log through gupvm's console follower.

The log is a real boot's, fed by `cat` through a pty instead of QEMU: the
same pexpect code reads it as it would read the guest.
"""

import re
import time
from pathlib import Path

import pexpect

from orchestrator.boot import StepCapture, follow_steps, wait_ready
from orchestrator.plan import Plan

_BOOT_HEADER = re.compile(r"^===== gupvm boot \d+: .*$", re.M)


def boots_of(console_log: Path) -> list[str]:
    return [text for text in _BOOT_HEADER.split(console_log.read_text()) if text.strip()]


def replay(console_log: Path, plan: Plan, tmp_path: Path) -> list[StepCapture]:
    captures: list[StepCapture] = []
    for number, text in enumerate(boots_of(console_log)):
        boot_file = tmp_path / f"boot-{number}.log"
        boot_file.write_text(text)
        # The sleep keeps the console open after the log, as a hung guest would.
        child = pexpect.spawn("sh", ["-c", f"cat '{boot_file}'; exec sleep 60"], encoding="utf-8", timeout=10)
        try:
            wait_ready(child, 10, boot_file)
            follow_steps(child, plan, captures, time.monotonic() + 60)
        finally:
            child.close(force=True)
    return captures
