"""The command line's options: their defaults, written once, and every one of them checked before any work.

cli parses; check() then holds every option a command has to what it must
be, so bad input exits 2 in one line before anything is unpacked, built,
booted or written, whichever command it is. The engines (pipeline, bisect,
presubmit, compare, merge) receive typed options, never the parsed
arguments.
"""

import argparse
import math
from pathlib import Path

from orchestrator import bisect, preflight, source
from orchestrator.arches import DEFAULT_ARCH, select_arches
from orchestrator.boot import BootLimits
from orchestrator.errors import UsageError
from orchestrator.qemu import accel_for_clock

DEFAULT_PLAN = "smoke"
DEFAULT_LIMITS = BootLimits(boot_seconds=120.0, run_seconds=1800.0)
DEFAULT_SAMPLES = 10  # presubmit's timing samples per benchmark step and boot
DEFAULT_PRUNE_DAYS = 30.0

# Commands that build kernels: their cache and any kernel tree must suit Kbuild.
_BUILDING = ("run", "build", "shell", "cells", "bisect", "presubmit")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check(args: argparse.Namespace) -> None:
    """Every option the command was given, checked; the first bad one raises UsageError naming it and the fix."""
    given = vars(args)
    if given.get("jobs") is not None:
        preflight.jobs(args.jobs)
    for name in ("boot_timeout", "run_timeout"):
        if given.get(name) is not None:
            preflight.positive_seconds(_flag(name), given[name])
    if given.get("samples") is not None and given["samples"] < 1:
        raise UsageError(f"--samples {given['samples']}: give a positive number of samples")
    if given.get("fail_on_slower") is not None and not (math.isfinite(given["fail_on_slower"])
                                                        and given["fail_on_slower"] >= 0):
        raise UsageError(f"--fail-on-slower {given['fail_on_slower']:g}: give a percentage of 0 or more")
    if given.get("older_than") is not None and not (math.isfinite(args.older_than) and args.older_than >= 0):
        raise UsageError(f"--older-than {args.older_than:g}: give a number of days, 0 or more")
    if given.get("clock") is not None:
        accel_for_clock(args.clock, given.get("accel") or "auto")  # a clash of the two: stop before building
    for name in ("junit", "kcidb"):
        if given.get(name) is not None:
            preflight.writable_file(_flag(name), given[name])
    if given.get("resume") is not None and not args.resume.is_file():
        raise UsageError(f"--resume {args.resume}: no such file; give the bisect.json of an earlier bisection")
    for name in ("out", "cache_dir"):
        if given.get(name) is not None:
            flag = "OUT" if (args.command, name) == ("merge", "out") else _flag(name)
            preflight.writable_directory(flag, given[name])
    if args.command in _BUILDING:
        preflight.kbuild_safe("--cache-dir", args.cache_dir)  # builds and unpacked trees live there
        trees = [("--kernel-src", spec) for spec in kernel_specs(args)]
        if given.get("selftests_from"):
            trees.append(("--selftests-from", given["selftests_from"]))
        for flag, spec in trees:
            if not spec.startswith("debian:"):
                preflight.kbuild_safe(flag, Path(spec).expanduser())
                # Bisect and presubmit check their repository; for git bisect run, a tree gupvm cannot test
                # is an answer (skip this commit), not bad input.
                if args.command in ("run", "build", "shell") and not given.get("git_bisect_codes"):
                    source.check_tree(Path(spec).expanduser(), flag)


def add_limit_options(parser: argparse.ArgumentParser, run: bool = True) -> None:
    """The time limits of a boot (run: and of a whole boot's steps)."""
    parser.add_argument("--boot-timeout", type=float, default=DEFAULT_LIMITS.boot_seconds,
                        help="seconds for the guest to reach init (default: %(default)s)")
    if run:
        parser.add_argument("--run-timeout", type=float, default=DEFAULT_LIMITS.run_seconds,
                            help="seconds for one whole boot, steps included (default: %(default)s)")


def kernel_specs(args: argparse.Namespace) -> list[str]:
    specs = getattr(args, "kernel_src", None) or []
    return [specs] if isinstance(specs, str) else specs


def limits(args: argparse.Namespace) -> BootLimits:
    return BootLimits(getattr(args, "boot_timeout", DEFAULT_LIMITS.boot_seconds),
                      getattr(args, "run_timeout", DEFAULT_LIMITS.run_seconds))


def bisect_command(args: argparse.Namespace) -> tuple[bisect.BisectRequest, bisect.Workplace,
                                                      tuple[bisect.BisectState, Path] | None]:
    """What `gupvm bisect` was asked, typed: from the command line, or from bisect.json with --resume."""
    place = bisect.Workplace(args.jobs, args.cache_dir.absolute(), args.out.absolute(), args.junit)
    if args.resume:
        state = bisect.load_state(args.resume)
        return bisect.BisectRequest.from_arguments(state.arguments), place, (state, args.resume)
    if not args.kernel_src or not args.good or not args.bad:
        raise UsageError("bisect needs --kernel-src PATH (a git checkout), --good A and --bad B, or --resume FILE")
    arches = select_arches(args.arch or [DEFAULT_ARCH])
    if len(arches) != 1:
        raise UsageError("--arch: bisect one arch at a time")
    request = bisect.BisectRequest(
        kernel_src=args.kernel_src, good=args.good, bad=args.bad, arch=arches[0].name, plan=args.plan,
        step=tuple(args.step), kconfig=tuple(str(path.resolve()) for path in args.kconfig),
        kconfig_add=tuple(args.kconfig_add), accel=args.accel, boot_timeout=args.boot_timeout,
        run_timeout=args.run_timeout)
    return request, place, None
