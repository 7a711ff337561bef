#!/usr/bin/env python3
"""What each arch costs against x86_64: a cold kernel build and a boot with the smoke plan, side by side.

Builds one tree's smoke-plan kernel for each arch in a new cache (ccache
off; the build stage's time, which the source's unpacking and the config
are not part of; the guest's programs build beside it at low priority, as
in every run), boots each with the smoke plan
under TCG, and prints per arch the cold build's seconds and files compiled,
the boot's seconds (QEMU start to power-off, the seven steps included), and
each against x86_64's. Targets (issue 18): a cross build at most 1.3 x the
x86_64 build, boot plus smoke at most 2 x.

Usage: arch_times.py [debian:X.Y] [ARCH ...]   (default debian:7.3 x86_64 arm64 armv7 armv7-lpae)
"""

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from orchestrator.tools import build_env

DEFAULT_ARCHES = ("x86_64", "arm64", "armv7", "armv7-lpae")


def one_arch(kernel: str, arch: str, cache: Path, out: Path) -> tuple[float, float, int]:
    """(cold build seconds, boot-plus-smoke seconds, files compiled) of the smoke plan's kernel on arch."""
    runs = out / arch
    subprocess.run([sys.executable, "-m", "orchestrator", "run", "--kernel-src", kernel, "--arch", arch,
                    "--plan", "smoke", "--cache-dir", str(cache), "--out", str(runs)],
                   env=dict(build_env(), CCACHE_DISABLE="1"), check=True, stdout=subprocess.DEVNULL)
    (suite,) = json.loads(next(runs.glob("*/results.json")).read_text())
    log = next(runs.glob("*/build-*.log")).read_text()
    return suite["build"]["seconds"], suite["boot"]["seconds"], log.count("\n  CC ")


def main() -> int:
    kernel = sys.argv[1] if len(sys.argv) > 1 else "debian:7.3"
    arches = tuple(sys.argv[2:]) or DEFAULT_ARCHES
    if "x86_64" not in arches:
        arches = ("x86_64", *arches)
    scratch = Path(tempfile.mkdtemp(prefix="gupvm-arches-"))
    try:
        figures = {arch: one_arch(kernel, arch, scratch / "cache", scratch / "out") for arch in arches}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base_build, base_boot, _ = figures["x86_64"]
    print(f"{kernel}, smoke plan, TCG, ccache off")
    print(f"{'arch':<12} {'cold build':>11} {'files':>6} {'x x86_64':>9} {'boot+smoke':>11} {'x x86_64':>9}")
    for arch, (build, boot, files) in figures.items():
        print(f"{arch:<12} {build:9.1f} s {files:6d} {build / base_build:8.2f}x {boot:9.1f} s {boot / base_boot:8.2f}x")
    print("targets: a cross build <= 1.3 x x86_64's; boot plus smoke <= 2 x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
