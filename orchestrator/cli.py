"""The gupvm command line."""

import argparse
import os
import sys
import time
from pathlib import Path

from orchestrator import doctor, exit_codes, interrupt, preflight, report, runner, source
from orchestrator.arches import DEFAULT_ARCH, all_arches, select_arches
from orchestrator.boot import BootLimits
from orchestrator.config import ConfigRequest
from orchestrator.errors import GupvmError, InfrastructureError, UsageError
from orchestrator.paths import default_cache_dir
from orchestrator.plan import available_plans, load_plan
from orchestrator.qemu import ACCELS


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel-src", metavar="PATH|debian:X.Y",
                        help=f"kernel source: a git checkout, an unpacked tree, or a Debian linux-source "
                             f"package (default: {source.DEFAULT_SOURCE})")
    parser.add_argument("--arch", action="append", metavar="ARCH",
                        help=f"{', '.join(all_arches())} or all; repeatable (default: {DEFAULT_ARCH})")
    parser.add_argument("--kconfig", action="append", default=[], type=Path, metavar="FILE",
                        help="a Kconfig fragment merged after gupvm's own; repeatable, later wins")
    parser.add_argument("--kconfig-add", action="append", default=[], metavar="CONFIG_X=VALUE",
                        help="one option merged last; repeatable, later wins")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, help="make -j (default: all CPUs)")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(),
                        help="builds, unpacked sources and guest programs (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out"),
                        help="a fresh run directory is made below it (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gupvm", description="Build a kernel, boot it in QEMU and test GUP pinning with gup_test.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="configure, build, boot and test (exit 0 passed, 1 failed, "
                                          "2 bad input, 3 build or boot failure)")
    _add_build_options(run)
    run.add_argument("--plan", default="smoke", help=f"{', '.join(available_plans())} or a .toml file")
    run.add_argument("--accel", choices=ACCELS, default="auto",
                     help="auto uses KVM only when a probe boot reaches the kernel (default: auto)")
    run.add_argument("--junit", type=Path, help="where to write JUnit XML (default: junit.xml in the run directory)")
    run.add_argument("--boot-timeout", type=float, default=120.0, help="seconds for the guest to reach init")
    run.add_argument("--run-timeout", type=float, default=1800.0, help="seconds for one whole boot, steps included")
    build = commands.add_parser("build", help="configure and build only")
    _add_build_options(build)
    doctor_parser = commands.add_parser("doctor", help="check the host: QEMU, compilers, busybox, KVM, disk")
    doctor_parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    return parser


def _new_run_dir(base: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for attempt in range(1000):
        run_dir = base / (stamp if attempt == 0 else f"{stamp}-{attempt}")
        try:
            run_dir.mkdir(parents=True)
            return run_dir
        except FileExistsError:
            continue
    raise UsageError(f"--out {base}: cannot make a fresh run directory there")


def _check_options(args: argparse.Namespace) -> None:
    """Everything the command line says, checked before anything is unpacked, built or written."""
    preflight.jobs(args.jobs)
    if args.command == "run":
        preflight.positive_seconds("--boot-timeout", args.boot_timeout)
        preflight.positive_seconds("--run-timeout", args.run_timeout)
        if args.junit is not None:
            preflight.writable_file("--junit", args.junit)
    preflight.writable_directory("--out", args.out)
    preflight.writable_directory("--cache-dir", args.cache_dir)
    preflight.kbuild_safe("--cache-dir", args.cache_dir)  # builds and unpacked trees live there
    if args.kernel_src and not args.kernel_src.startswith("debian:"):
        preflight.kbuild_safe("--kernel-src", Path(args.kernel_src).expanduser())


def _run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan) if args.command == "run" else None
    _check_options(args)
    # Decided now: a later change of directory cannot send the results elsewhere.
    args.out, args.cache_dir = args.out.absolute(), args.cache_dir.absolute()
    junit = getattr(args, "junit", None) and args.junit.absolute()
    requests = tuple(
        (arch, ConfigRequest.for_arch(arch, args.kconfig, args.kconfig_add, plan.kconfig if plan else ()))
        for arch in select_arches(args.arch)
    )
    preflight.host_tools([arch for arch, _ in requests], boots=plan is not None)
    preflight.free_disk(args.cache_dir)
    kernel_source = source.resolve(args.kernel_src, args.cache_dir)
    run_dir = _new_run_dir(args.out).resolve()
    junit_path = junit or run_dir / "junit.xml"
    options = runner.RunOptions(
        source=kernel_source,
        requests=requests,
        plan=plan,
        jobs=args.jobs,
        accel=getattr(args, "accel", "tcg"),
        cache_dir=args.cache_dir,
        run_dir=run_dir,
        limits=BootLimits(getattr(args, "boot_timeout", 120.0), getattr(args, "run_timeout", 1800.0)),
    )
    suites = runner.run(options, announce=lambda line: print(line, flush=True))
    report_failed = False
    with interrupt.shielded():  # a second signal now must not cost the results
        try:
            report.write_reports(suites, run_dir, junit_path)
        except InfrastructureError as error:
            print(f"gupvm: error: {error}", file=sys.stderr)
            report_failed, junit_path = True, run_dir / "junit.xml"
        print(report.summary(suites))
        print(f"gupvm: results in {run_dir}, JUnit in {junit_path}", flush=True)
    return exit_codes.decide(
        signum=interrupt.received(),
        infrastructure_failed=report_failed or any("failed" in (suite.build.status, suite.boot.status)
                                                   for suite in suites),
        tests_failed=any(step.status not in ("passed", "skipped") for suite in suites for step in suite.steps),
    )


def main(argv: list[str] | None = None) -> int:
    try:
        with interrupt.handling_signals():
            args = build_parser().parse_args(argv)
            if args.command == "doctor":
                preflight.writable_directory("--cache-dir", args.cache_dir)
                return doctor.run(args.cache_dir)
            return _run(args)
    except GupvmError as error:
        print(f"gupvm: error: {error}", file=sys.stderr)
        return error.exit_code
    except interrupt.Interrupted as signal:  # before the run directory was made: nothing to report
        print(f"gupvm: interrupted by {signal.name}", file=sys.stderr)
        return exit_codes.for_signal(signal.signum)
