#!/usr/bin/env python3
"""Time the default gupvm run against a plain make plus one QEMU boot.

Prints, for `gupvm run` (debian:6.1, x86_64, smoke):
  cold      an empty gupvm cache (Debian's tarball unpacked, configured, built);
  warm      the same run again, nothing changed;
  unpacked  cold again but for the unpacked source, which a plain make presupposes;
  plain     for the same final .config: `make bzImage` in a fresh build
            directory plus one QEMU boot of the same plan's initramfs.
Both build with gupvm's build environment (compiler wrappers, fixed build
identity) and ccache off, so cold and plain compile the same work the same way.
Targets (2 cores, TCG): cold <= 240 s, warm <= 15 s, cold <= plain * 1.05.

Usage: run_times.py [ROUNDS]  (default 1; with more, each figure is the median)
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import guest, gup_programs, protocol, source
from orchestrator.arches import all_arches
from orchestrator.plan import load_plan
from orchestrator.qemu import kernel_command_line, qemu_command
from orchestrator.tools import build_env

ARCH = all_arches()["x86_64"]


def timed(argv: list[str], env: dict[str, str], **kwargs) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, **kwargs)
    return time.monotonic() - started


def one_round() -> dict[str, float]:
    scratch = Path(tempfile.mkdtemp(prefix="gupvm-bench-"))
    env = dict(build_env(), GUPVM_CACHE=str(scratch / "cache"), CCACHE_DISABLE="1")
    gupvm = [sys.executable, "-m", "orchestrator", "run", "--accel", "tcg", "--out", str(scratch / "out")]
    try:
        figures = {"cold": timed(gupvm, env), "warm": timed(gupvm, env)}
        for built in ("builds", "configs", "guest"):
            shutil.rmtree(scratch / "cache" / built)
        figures["unpacked"] = timed(gupvm, env)
        run_dir = sorted((scratch / "out").iterdir())[0]
        kernel_source = source.resolve(None, scratch / "cache")
        build_dir = scratch / "plain-build"
        build_dir.mkdir()
        shutil.copy(run_dir / f"config-debian-6.1-{ARCH.name}", build_dir / ".config")
        figures["make"] = timed(["make", "-C", str(kernel_source.path), f"O={build_dir}", *ARCH.make_variables,
                                 f"-j{os.cpu_count()}", "bzImage"], env)
        tools = guest.build_guest_tools(kernel_source, ARCH, scratch / "cache", scratch / "guest.log")
        initramfs = scratch / "initramfs.cpio"
        plan = load_plan("smoke")
        commands = gup_programs.plan_commands(plan, ARCH, kernel_source.version,
                                              gup_programs.tree_programs(kernel_source.selftests_dir))
        guest.write_initramfs(tools, protocol.render_init(plan, ARCH, commands), initramfs)
        command = qemu_command(ARCH, "tcg", build_dir / ARCH.kernel_image, initramfs,
                               kernel_command_line(ARCH, "gupvm.first=1"))
        figures["boot"] = timed(command, env, stdin=subprocess.DEVNULL, timeout=300)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    figures["plain"] = figures["make"] + figures["boot"]
    return figures


def main() -> int:
    rounds = [one_round() for _ in range(int(sys.argv[1]) if len(sys.argv) > 1 else 1)]
    median = {key: statistics.median(round_[key] for round_ in rounds) for key in rounds[0]}
    for number, figures in enumerate(rounds, start=1):
        print(f"round {number}: " + ", ".join(f"{key} {value:.1f} s" for key, value in figures.items()))
    print(f"cold run (empty cache):        {median['cold']:7.1f} s   target <= 240 s")
    print(f"warm run (nothing changed):    {median['warm']:7.1f} s   target <= 15 s")
    print(f"plain make + one boot:         {median['plain']:7.1f} s   (make {median['make']:.1f} s, "
          f"boot {median['boot']:.1f} s)")
    print(f"cold, source already unpacked: {median['unpacked']:7.1f} s")
    print(f"gupvm cold over plain:         {100 * (median['cold'] / median['plain'] - 1):+7.1f} %   target <= +5 %")
    print(f"  the same, source unpacked:   {100 * (median['unpacked'] / median['plain'] - 1):+7.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
