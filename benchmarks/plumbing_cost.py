#!/usr/bin/env python3
"""What the pinning plan's kernel plumbing costs: a cold build and a boot, with and without it.

Builds the same tree twice from an empty cache (ccache off): once as the
smoke plan's kernel, once with every feature the pinning plan needs
(kconfigs/features.toml: shmem, ext4 on a RAM disk, io_uring, secretmem, a
movable zone and CMA, ...), and boots each with one gup_test step. Prints the
cold build times (target: plumbing <= 1.25 x the plain kernel) and the boot
times (QEMU start to power-off, less the step).

Usage: plumbing_cost.py [debian:X.Y] [ARCH]   (default debian:6.1 x86_64)
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.plan import load_plan
from orchestrator.tools import build_env

STEP = """
[[step]]
name = "pin_basic"
args = ["-b"]
expect = "pin"
requires = {requires}
"""


def one_kernel(kernel: str, arch: str, requires: list[str], scratch: Path) -> tuple[float, float, int]:
    """(cold build seconds, boot seconds less the step's, files compiled) of a one-step plan's kernel."""
    plan = scratch / f"plan-{len(requires)}.toml"
    plan.write_text(STEP.format(requires=json.dumps(requires)))
    cache, out = scratch / f"cache-{len(requires)}", scratch / f"out-{len(requires)}"
    env = dict(build_env(), CCACHE_DISABLE="1")
    subprocess.run([sys.executable, "-m", "orchestrator", "run", "--kernel-src", kernel, "--arch", arch,
                    "--plan", str(plan), "--cache-dir", str(cache), "--out", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    (suite,) = json.loads(next(out.glob("*/results.json")).read_text())
    step_seconds = sum(step["seconds"] for step in suite["steps"])
    log = next(out.glob("*/build-*.log")).read_text()
    return suite["build"]["seconds"], suite["boot"]["seconds"] - step_seconds, log.count("\n  CC ")


def main() -> int:
    kernel = sys.argv[1] if len(sys.argv) > 1 else "debian:6.1"
    arch = sys.argv[2] if len(sys.argv) > 2 else "x86_64"
    features = sorted(feature.name for feature in load_plan("pinning").features)
    scratch = Path(tempfile.mkdtemp(prefix="gupvm-plumbing-"))
    try:
        plain = one_kernel(kernel, arch, [], scratch)
        plumbed = one_kernel(kernel, arch, features, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{kernel} {arch}; plumbing: {', '.join(features)}")
    print(f"cold build, smoke kernel:    {plain[0]:7.1f} s  ({plain[2]} files compiled)")
    print(f"cold build, pinning kernel:  {plumbed[0]:7.1f} s  ({plumbed[2]} files compiled)")
    print(f"build ratio:                 {plumbed[0] / plain[0]:7.2f} x  target <= 1.25 x")
    print(f"boot, smoke kernel:          {plain[1]:7.1f} s")
    print(f"boot, pinning kernel:        {plumbed[1]:7.1f} s  ({plumbed[1] / plain[1]:.2f} x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
