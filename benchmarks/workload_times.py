#!/usr/bin/env python3
"""How long each of gupvm's own workloads takes under TCG, per arch, and whether the pin limit fits its timeout.

Runs the pinning plan's workload steps (io_uring fixed buffers, remote
access, the pin limit, O_DIRECT, udmabuf; gupvm run --plan pinning --step
...) on one kernel for each arch, and prints each step's seconds with its
status; for the pin limit, the pins granted and its timeout.

Usage: workload_times.py [debian:X.Y] [ARCH ...]   (default debian:7.3 x86_64 i386 i386-pae)
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.gup_programs import is_own_workload
from orchestrator.plan import load_plan


def main() -> int:
    kernel = sys.argv[1] if len(sys.argv) > 1 else "debian:7.3"
    arches = sys.argv[2:] or ["x86_64", "i386", "i386-pae"]
    plan = load_plan("pinning")
    steps = [step for step in plan.steps if is_own_workload(step.program)]
    with tempfile.TemporaryDirectory(prefix="gupvm-workloads-") as scratch:
        subprocess.run([sys.executable, "-m", "orchestrator", "run", "--kernel-src", kernel, "--plan", "pinning",
                        *(f"--step={step.name}" for step in steps), "--out", scratch,
                        *(f"--arch={arch}" for arch in arches)], stdout=subprocess.DEVNULL)
        suites = json.loads(next(Path(scratch).glob("*/results.json")).read_text())
    timeouts = {step.name: step.timeout for step in steps}
    print(f"{kernel}, TCG (icount): seconds per workload step")
    for suite in suites:
        arch = suite["properties"]["arch"]
        for step in suite["steps"]:
            line = f"{arch:9} {step['name']:24} {step['seconds']:7.1f} s  {step['status']}"
            if "pins_succeeded" in step["figures"]:
                line += (f"  (pins granted: {step['figures']['pins_succeeded']}; "
                         f"timeout {timeouts[step['name']]} s)")
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
