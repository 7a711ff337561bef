"""The gupvm command line."""

import argparse
import os
import sys
import time
from importlib.metadata import version
from pathlib import Path

from orchestrator import doctor, report, runner, source
from orchestrator.arches import DEFAULT_ARCH, all_arches, select_arches
from orchestrator.boot import BootLimits
from orchestrator.config import ConfigRequest
from orchestrator.errors import GupvmError, UsageError
from orchestrator.paths import default_cache_dir
from orchestrator.plan import available_plans, load_plan
from orchestrator.qemu import ACCELS

EXIT_PASSED, EXIT_TEST_FAILED, EXIT_INFRASTRUCTURE = 0, 1, 3  # 2, bad input: UsageError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see 'gupvm {self.prog.split()[-1]} --help')")


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
    parser.add_argument("--version", action="version", version=f"gupvm {version('gupvm')}")
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


def _run(args: argparse.Namespace) -> int:
    plan = load_plan(args.plan) if args.command == "run" else None
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give a positive number of jobs")
    requests = tuple(
        (arch, ConfigRequest.for_arch(arch, args.kconfig, args.kconfig_add)) for arch in select_arches(args.arch)
    )
    kernel_source = source.resolve(args.kernel_src, args.cache_dir)
    run_dir = _new_run_dir(args.out).resolve()
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
    junit_path = getattr(args, "junit", None) or run_dir / "junit.xml"
    report.write_reports(suites, run_dir, junit_path)
    print(report.summary(suites))
    print(f"gupvm: results in {run_dir}, JUnit in {junit_path}")
    if any(suite.build.status == "failed" or suite.boot.status == "failed" for suite in suites):
        return EXIT_INFRASTRUCTURE
    if any(step.status not in ("passed", "skipped") for suite in suites for step in suite.steps):
        return EXIT_TEST_FAILED
    return EXIT_PASSED


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "doctor":
            return doctor.run(args.cache_dir)
        return _run(args)
    except GupvmError as error:
        print(f"gupvm: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("gupvm: interrupted", file=sys.stderr)
        return 130
