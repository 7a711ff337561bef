"""The signal machinery on plain processes: a child's whole process group ends with gupvm's interruption.

(The same on real make and QEMU runs is in test_signals.py.)
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

# A stand-in for make: a shell with a child of its own, run as gupvm runs its tools.
PROGRAM = """
import sys
from orchestrator import interrupt
try:
    with interrupt.handling_signals():
        print("started", flush=True)
        interrupt.run(["sh", "-c", "sleep 300 & sleep 300; wait"])
except interrupt.Interrupted as stopped:
    print(f"interrupted {stopped.name} {interrupt.received()}", flush=True)
    sys.exit(128 + stopped.signum)
"""


def live_processes_with(mark: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark.encode() in (entry / "environ").read_bytes():
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(entry.name))
        except OSError:
            continue
    return pids


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_ends_the_childs_whole_group_at_once(signum: int):
    mark = uuid.uuid4().hex
    process = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, GUPVM_TEST_RUN=mark))
    assert process.stdout.readline() == "started\n"
    deadline = time.monotonic() + 10
    while len(live_processes_with(mark)) < 4 and time.monotonic() < deadline:  # python, sh, two sleeps
        time.sleep(0.05)
    assert len(live_processes_with(mark)) == 4
    process.send_signal(signum)
    sent = time.monotonic()
    output, _ = process.communicate(timeout=10)
    assert time.monotonic() - sent < 5
    assert process.returncode == 128 + signum
    assert output == f"interrupted {signal.Signals(signum).name} {int(signum)}\n"
    assert live_processes_with(mark) == []  # the background sleep too: the group, not just its leader


def test_nothing_new_starts_once_interrupted(monkeypatch):
    from orchestrator import interrupt

    monkeypatch.setattr(interrupt, "_received", signal.SIGTERM)
    with pytest.raises(interrupt.Interrupted):
        interrupt.run(["true"])
