"""The gupvm command line."""

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from orchestrator import cells, doctor, kcidb, merge, outcome, progress, report, runner, shell, source
from orchestrator.arches import DEFAULT_ARCH, all_arches, select_arches
from orchestrator.boot import BootLimits
from orchestrator.config import ConfigRequest
from orchestrator.errors import GupvmError, UsageError
from orchestrator.paths import default_cache_dir
from orchestrator.plan import available_plans, load_plan
from orchestrator.qemu import ACCELS

DEFAULT_PLAN = "smoke"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see 'gupvm {self.prog.split()[-1]} --help')")


def _add_build_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kernel-src", action="append", metavar="PATH|debian:X.Y",
                        help=f"kernel source: a git checkout, an unpacked tree, or a Debian linux-source "
                             f"package; repeatable (default: {source.DEFAULT_SOURCE})")
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
    parser.add_argument("--shard", metavar="I/N|auto",
                        help="run only shard I of N (1-based; whole kernel builds), or auto from GitLab's "
                             "CI_NODE_INDEX/CI_NODE_TOTAL")


def _add_plan_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", action="append", metavar="NAME|FILE",
                        help=f"{', '.join(available_plans())} or a .toml file; repeatable (default: {DEFAULT_PLAN})")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gupvm", description="Build a kernel, boot it in QEMU and test GUP pinning with gup_test.")
    parser.add_argument("--version", action="version", version=f"gupvm {version('gupvm')}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="configure, build, boot and test (exit 0 passed, 1 failed, "
                                          "2 bad input, 3 build or boot failure)")
    _add_build_options(run)
    _add_plan_option(run)
    run.add_argument("--accel", choices=ACCELS, default="auto",
                     help="auto uses KVM only when a probe boot reaches the kernel (default: auto)")
    run.add_argument("--junit", type=Path, help="where to write JUnit XML (default: junit.xml in the run directory)")
    run.add_argument("--boot-timeout", type=float, default=120.0, help="seconds for the guest to reach init")
    run.add_argument("--run-timeout", type=float, default=1800.0, help="seconds for one whole boot, steps included")
    run.add_argument("--kcidb", type=Path, metavar="FILE", help=f"also write the run as KCIDB JSON "
                                                               f"(schema v{kcidb.SCHEMA_VERSION})")
    build = commands.add_parser("build", help="configure and build only")
    _add_build_options(build)
    cells_parser = commands.add_parser("cells", help="list the cells (kernel x arch x plan) a run would have")
    _add_build_options(cells_parser)
    _add_plan_option(cells_parser)
    cells_parser.add_argument("--json", action="store_true", help="as JSON: id, kernel, arch, plan, build, shard")
    shell_parser = commands.add_parser("shell", help="boot the kernel (built if need be) with the plan's setup "
                                                     "and hand its console over; Ctrl-] or poweroff ends it")
    _add_build_options(shell_parser)
    _add_plan_option(shell_parser)
    shell_parser.add_argument("--accel", choices=ACCELS, default="auto")
    shell_parser.add_argument("--boot-timeout", type=float, default=120.0, help="seconds for the guest to reach init")
    merge_parser = commands.add_parser("merge", help="merge the run directories of shards into one result "
                                                     "(exits like a run)")
    merge_parser.add_argument("out", type=Path, metavar="OUT", help="a new directory for the merged result")
    merge_parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    merge_parser.add_argument("--kcidb", type=Path, metavar="FILE", help="also write the merged run as KCIDB JSON")
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


@dataclass(frozen=True)
class _Selection:
    every: tuple[cells.Cell, ...]  # the command line's cells
    mine: tuple[cells.Cell, ...]  # this shard's
    shard: cells.Shard | None
    note: str  # where the shard came from


def _select(args: argparse.Namespace) -> _Selection:
    plans = (args.plan or [DEFAULT_PLAN]) if args.command != "build" else None
    arches = [arch.name for arch in select_arches(args.arch)]
    every = cells.product(args.kernel_src or [source.DEFAULT_SOURCE], arches, plans)
    if not args.shard:
        return _Selection(every, every, None, "")
    shard, note = cells.parse_shard(args.shard, os.environ)
    return _Selection(every, cells.shard_cells(every, shard), shard, note)


def _list_cells(args: argparse.Namespace) -> int:
    selection = _select(args)
    for plan in dict.fromkeys(cell.plan for cell in selection.every if cell.plan):
        load_plan(plan)
    if not args.json:
        print("\n".join(cell.id for cell in selection.mine))
        return outcome.EXIT_PASSED
    numbers = cells.shard_numbers(selection.every, selection.shard.total) if selection.shard else {}
    print(json.dumps([{"id": cell.id, "kernel": cell.kernel, "arch": cell.arch, "plan": cell.plan,
                       "build": cell.build_id, "suite": cell.suite_name, "shard": numbers.get(cell.build_id)}
                      for cell in selection.mine], indent=2))
    return outcome.EXIT_PASSED


def _options(args: argparse.Namespace, selection: _Selection, reporter: progress.Reporter) -> runner.RunOptions:
    """What runs where: this shard's cells grouped by kernel build, the sources resolved, a fresh run directory."""
    if args.jobs < 1:
        raise UsageError(f"--jobs {args.jobs}: give a positive number of jobs")
    plans = {cell.plan: load_plan(cell.plan) for cell in selection.every if cell.plan}
    requests = {arch.name: (arch, ConfigRequest.for_arch(arch, args.kconfig, args.kconfig_add))
                for arch in select_arches(args.arch)}
    if selection.note:
        reporter.note(f"{selection.note}: {len(selection.mine)} of {len(selection.every)} cells")
    sources = {}
    for kernel in dict.fromkeys(cell.kernel for cell in selection.mine):
        what = "unpack" if kernel.startswith("debian:") else "source"
        with reporter.stage(f"{cells.kernel_label(kernel)} {what}"):
            sources[kernel] = source.resolve(kernel, args.cache_dir)
    targets = tuple(
        runner.BuildTarget(sources[group[0].kernel], *requests[group[0].arch],
                           tuple((cell, plans.get(cell.plan)) for cell in group))
        for group in cells.builds(selection.mine).values()
    )
    return runner.RunOptions(
        targets=targets,
        jobs=args.jobs,
        accel=getattr(args, "accel", "tcg"),
        cache_dir=args.cache_dir,
        run_dir=_new_run_dir(args.out).resolve(),
        limits=BootLimits(getattr(args, "boot_timeout", 120.0), getattr(args, "run_timeout", 1800.0)),
    )


def _shell(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        raise UsageError("gupvm shell needs a terminal on its standard input; run it from one")
    selection = _select(args)
    if len(selection.mine) != 1:
        raise UsageError(f"gupvm shell boots one kernel with one plan's setup; this command line has "
                         f"{len(selection.mine)} cells (give at most one --kernel-src, --arch and --plan)")
    with progress.reporter_for() as reporter:
        options = _options(args, selection, reporter)
    return shell.run(options)


def _run(args: argparse.Namespace) -> int:
    selection = _select(args)
    with progress.reporter_for() as reporter:
        options = _options(args, selection, reporter)
        run_dir = options.run_dir
        suites = runner.run(options, reporter)
    junit_path = getattr(args, "junit", None) or run_dir / "junit.xml"
    report.write_reports(suites, run_dir, run_dir / "junit.xml")  # the run directory is whole for 'gupvm merge'
    if junit_path != run_dir / "junit.xml":
        junit_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "junit.xml", junit_path)
    merge.write_manifest(run_dir, selection.every, selection.mine, selection.shard)
    if getattr(args, "kcidb", None):
        kcidb.write(args.kcidb, json.loads(report.results_json(suites)))
    print(report.summary(suites))
    print(f"gupvm: results in {run_dir}, JUnit in {junit_path}")
    return outcome.exit_code([stage.status for suite in suites for stage in (suite.build, suite.boot)],
                             [step.status for suite in suites for step in suite.steps])


def _merge(args: argparse.Namespace) -> int:
    code, line = merge.merge_runs(args.out, args.run_dirs)
    if args.kcidb:
        kcidb.write(args.kcidb, json.loads((args.out / "results.json").read_text()))
    print(line)
    return code


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "doctor":
            return doctor.run(args.cache_dir)
        if args.command == "cells":
            return _list_cells(args)
        if args.command == "merge":
            return _merge(args)
        if args.command == "shell":
            return _shell(args)
        return _run(args)
    except GupvmError as error:
        print(f"gupvm: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("gupvm: interrupted", file=sys.stderr)
        return 130
