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
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from orchestrator import guest, protocol, source
from orchestrator.arches import all_arches
from orchestrator.commands import build_env
from orchestrator.plan import load_plan
from orchestrator.qemu import kernel_command_line, qemu_command

ARCH = all_arches()["x86_64"]


def timed(argv: list[str], env: dict[str, str], **kwargs) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, **kwargs)
    return time.monotonic() - started


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="gupvm-bench-"))
    env = dict(build_env(), GUPVM_CACHE=str(scratch / "cache"), CCACHE_DISABLE="1")
    gupvm = [sys.executable, "-m", "orchestrator", "run", "--accel", "tcg", "--out", str(scratch / "out")]
    try:
        cold = timed(gupvm, env)
        warm = timed(gupvm, env)
        for built in ("builds", "configs", "guest"):
            shutil.rmtree(scratch / "cache" / built)
        unpacked = timed(gupvm, env)
        run_dir = sorted((scratch / "out").iterdir())[0]
        kernel_source = source.resolve(None, scratch / "cache")
        build_dir = scratch / "plain-build"
        build_dir.mkdir()
        shutil.copy(run_dir / f"config-{ARCH.name}", build_dir / ".config")
        make = timed(["make", "-C", str(kernel_source.path), f"O={build_dir}", f"ARCH={ARCH.make_arch}",
                      f"-j{os.cpu_count()}", "bzImage"], env)
        tools = guest.build_guest_tools(kernel_source, ARCH, scratch / "cache", scratch / "guest.log")
        initramfs = scratch / "initramfs.cpio"
        guest.write_initramfs(tools, protocol.render_init(load_plan("smoke"), ARCH, kernel_source.version), initramfs)
        command = qemu_command(ARCH, "tcg", build_dir / ARCH.kernel_image, initramfs,
                               kernel_command_line(ARCH, "gupvm.first=1"))
        boot = timed(command, env, stdin=subprocess.DEVNULL, timeout=300)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    plain = make + boot
    print(f"cold run (empty cache):        {cold:7.1f} s   target <= 240 s")
    print(f"warm run (nothing changed):    {warm:7.1f} s   target <= 15 s")
    print(f"plain make + one boot:         {plain:7.1f} s   (make {make:.1f} s, boot {boot:.1f} s)")
    print(f"cold, source already unpacked: {unpacked:7.1f} s")
    print(f"gupvm cold over plain:         {100 * (cold / plain - 1):+7.1f} %   target <= +5 %")
    print(f"  the same, source unpacked:   {100 * (unpacked / plain - 1):+7.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
