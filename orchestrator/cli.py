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

from orchestrator import (
    bisect,
    cache,
    cells,
    compare,
    compare_report,
    doctor,
    exit_codes,
    interrupt,
    kcidb,
    merge,
    options,
    pipeline,
    preflight,
    presubmit,
    progress,
    report,
    samples,
    shell,
    source,
)
from orchestrator.arches import DEFAULT_ARCH, all_arches, select_arches
from orchestrator.bisect_verdict import CommitStage, failure_stage
from orchestrator.config import ConfigRequest
from orchestrator.errors import GupvmError, UsageError
from orchestrator.gitrepo import Repo
from orchestrator.layout import RunDir
from orchestrator.paths import default_cache_dir
from orchestrator.plan import Plan, available_plans, load_plan, select_steps
from orchestrator.qemu import ACCELS, CLOCKS
from orchestrator.results import SuiteResult

# --git-bisect-codes: what `git bisect run` reads (0 good, 1 bad, 125 cannot be tested, 128 or more: abort).
GIT_CANNOT_TEST, GIT_ABORT = 125, 128


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _add_build_options(parser: argparse.ArgumentParser, many_kernels: bool = True) -> None:
    """many_kernels: --kernel-src repeats (a run is the product of kernels, arches and plans) and --shard exists."""
    if many_kernels:
        parser.add_argument("--kernel-src", action="append", metavar="PATH|debian:X.Y",
                            help=f"kernel source: a git checkout, an unpacked tree, or a Debian linux-source "
                                 f"package (debian:X.Y[=VERSION]); repeatable (default: {source.DEFAULT_SOURCE})")
        parser.add_argument("--selftests-from", metavar="PATH|debian:X.Y",
                            help="build the pinning selftests (cow, gup_longterm, ...) from this tree instead of "
                                 "each kernel's own, e.g. the newest tests on an LTS kernel; gup_test, which "
                                 "speaks the kernel's own ioctl, still comes from the kernel's tree")
        parser.add_argument("--shard", metavar="I/N|auto",
                            help="run only shard I of N (1-based; whole kernel builds), or auto from GitLab's "
                                 "CI_NODE_INDEX/CI_NODE_TOTAL")
    else:
        parser.add_argument("--kernel-src", metavar="PATH", help="a git checkout of the kernel")
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


def _add_plan_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plan", action="append", metavar="NAME|FILE",
                        help=f"{', '.join(available_plans())} or a .toml file; repeatable "
                             f"(default: {options.DEFAULT_PLAN})")


def _add_compare_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail-on-slower", type=float, metavar="PCT",
                        help="also fail when a metric is slower with its whole interval beyond PCT %%")
    parser.add_argument("--junit", type=Path, help="where to write JUnit XML (default: junit.xml in the output)")


def build_parser() -> argparse.ArgumentParser:
    """The command line of every command; defaults come from options.py."""
    parser = _Parser(prog="gupvm", description="Build a kernel, boot it in QEMU and test GUP pinning with gup_test.")
    parser.add_argument("--version", action="version", version=f"gupvm {version('gupvm')}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="configure, build, boot and test (exit 0 passed, 1 failed, "
                                          "2 bad input, 3 build or boot failure)")
    _add_build_options(run)
    _add_plan_option(run)
    run.add_argument("--accel", choices=ACCELS, default="auto",
                     help="auto uses KVM only when a probe boot reaches the kernel (default: auto)")
    run.add_argument("--clock", choices=("auto", *CLOCKS), default="auto",
                     help="the guest clock timings are taken with: icount (instructions, deterministic; TCG only) "
                          "or realtime; auto: icount under TCG, realtime under KVM (default: auto)")
    run.add_argument("--samples", type=int, metavar="N",
                     help="timing samples per benchmark step, all in one boot (gup_test -r N)")
    run.add_argument("--step", action="append", default=[], metavar="NAME",
                     help="only these steps of the plan, on the whole plan's kernel; repeatable")
    run.add_argument("--junit", type=Path, help="where to write JUnit XML (default: junit.xml in the run directory)")
    options.add_limit_options(run)
    run.add_argument("--kcidb", type=Path, metavar="FILE", help=f"also write the run as KCIDB JSON "
                                                               f"(schema v{kcidb.SCHEMA_VERSION})")
    run.add_argument("--git-bisect-codes", action="store_true",
                     help="exit as 'git bisect run' expects: 0 passed, 1 failed, 125 the commit cannot be tested "
                          "(build or boot failure, config not met), 128 bad input or infrastructure trouble")
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
    options.add_limit_options(shell_parser, run=False)
    merge_parser = commands.add_parser("merge", help="merge the run directories of shards into one result "
                                                     "(exits like a run)")
    merge_parser.add_argument("out", type=Path, metavar="OUT", help="a new directory for the merged result")
    merge_parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR")
    merge_parser.add_argument("--kcidb", type=Path, metavar="FILE", help="also write the merged run as KCIDB JSON")
    bisect_parser = commands.add_parser("bisect", help="find the commit that broke GUP (exit 0 culprit named and "
                                                       "confirmed, 1 none confirmed, 2 bad input, 3 infrastructure)")
    _add_build_options(bisect_parser, many_kernels=False)
    bisect_parser.add_argument("--good", help="a commit where GUP works")
    bisect_parser.add_argument("--bad", help="a commit where it fails")
    bisect_parser.add_argument("--plan", default=options.DEFAULT_PLAN,
                               help="the plan whose failure is bisected (default: %(default)s)")
    bisect_parser.add_argument("--step", action="append", default=[], metavar="NAME",
                               help="only these steps of the plan; repeatable")
    bisect_parser.add_argument("--accel", choices=ACCELS, default="auto")
    bisect_parser.add_argument("--junit", type=Path, help="where to write JUnit XML (default: in the run directory)")
    options.add_limit_options(bisect_parser)
    bisect_parser.add_argument("--resume", type=Path, metavar="BISECT_JSON",
                               help="continue an interrupted bisection where it stopped")
    compare_parser = commands.add_parser("compare", help="compare two runs' steps and timings, offline (exit 0 clean, "
                                                   "1 new failure or slowdown, 2 bad input, 3 base broken)")
    compare_parser.add_argument("base", type=Path, metavar="BASE_RUN", help="a run directory, or a directory of runs")
    compare_parser.add_argument("head", type=Path, metavar="HEAD_RUN", help="a run directory, or a directory of runs")
    _add_compare_options(compare_parser)
    compare_parser.add_argument("--out", type=Path, default=Path("out"),
                                help="a fresh directory is made below it (default: %(default)s)")
    presubmit_parser = commands.add_parser(
        "presubmit", help="a patch series against its base: new failures and timing changes (exit 0 clean, "
                          "1 new failure or slowdown, 2 bad input, 3 base broken or build/boot infrastructure)")
    _add_build_options(presubmit_parser, many_kernels=False)
    presubmit_parser.add_argument("--base", metavar="REF", help="the base (its merge-base with the head); "
                                  "default: the current branch's upstream")
    presubmit_parser.add_argument("--head", metavar="REF",
                                  help="the head; default: the working tree as it is, uncommitted changes included")
    presubmit_parser.add_argument("--each", action="store_true",
                                  help="also test every commit of the series against the base")
    presubmit_parser.add_argument("--plan", default=options.DEFAULT_PLAN,
                                  help=f"{', '.join(available_plans())} or a .toml file")
    presubmit_parser.add_argument("--samples", type=int, default=options.DEFAULT_SAMPLES, metavar="N",
                                  help="timing samples per benchmark step and boot (default: %(default)s)")
    presubmit_parser.add_argument("--accel", choices=ACCELS, default="auto")
    presubmit_parser.add_argument("--clock", choices=("auto", *CLOCKS), default="auto")
    options.add_limit_options(presubmit_parser)
    _add_compare_options(presubmit_parser)
    doctor_parser = commands.add_parser("doctor", help="check the host: QEMU, compilers, busybox, KVM, disk")
    doctor_parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    cache_parser = commands.add_parser("cache", help="list what the cache holds (default), or prune it")
    cache_parser.add_argument("action", nargs="?", choices=("list", "prune"), default="list")
    cache_parser.add_argument("--older-than", type=float, default=options.DEFAULT_PRUNE_DAYS, metavar="DAYS",
                              help="prune: remove entries not used for DAYS days; 0 removes all (default: 30)")
    cache_parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
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
    plans = (args.plan or [options.DEFAULT_PLAN]) if args.command != "build" else None
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
        return exit_codes.PASSED
    numbers = cells.shard_numbers(selection.every, selection.shard.total) if selection.shard else {}
    print(json.dumps([{"id": cell.id, "kernel": cell.kernel, "arch": cell.arch, "plan": cell.plan,
                       "build": cell.build_id, "suite": cell.suite_name, "shard": numbers.get(cell.build_id)}
                      for cell in selection.mine], indent=2))
    return exit_codes.PASSED


def _plans(args: argparse.Namespace, selection: _Selection) -> dict[str, Plan]:
    plans = {cell.plan: select_steps(load_plan(cell.plan), tuple(getattr(args, "step", ())))
             for cell in selection.every if cell.plan}
    if getattr(args, "samples", None) is not None:
        plans = {name: samples.with_samples(plan, args.samples) for name, plan in plans.items()}
    return plans


def _options(args: argparse.Namespace, selection: _Selection, plans: dict[str, Plan],
             reporter: progress.Reporter) -> pipeline.RunOptions:
    """What runs where: this shard's cells grouped by kernel build, the sources resolved, a fresh run directory."""
    requests = {arch.name: (arch, ConfigRequest.for_plans(arch, args.kconfig, args.kconfig_add, tuple(plans.values())))
                for arch in select_arches(args.arch)}
    preflight.host_tools([arch for arch, _ in requests.values()], boots=bool(plans))
    preflight.free_disk(args.cache_dir)
    if selection.note:
        reporter.note(f"{selection.note}: {len(selection.mine)} of {len(selection.every)} cells")
    sources = {}
    for kernel in dict.fromkeys(cell.kernel for cell in selection.mine):
        what = "unpack" if kernel.startswith("debian:") else "source"
        with reporter.stage(f"{cells.kernel_label(kernel)} {what}"):
            sources[kernel] = source.resolve(kernel, args.cache_dir)
    selftests = None
    if spec := getattr(args, "selftests_from", None):
        with reporter.stage(f"selftests from {cells.kernel_label(spec)}"):
            selftests = source.resolve(spec, args.cache_dir)
    targets = tuple(
        pipeline.BuildTarget(sources[group[0].kernel], *requests[group[0].arch],
                           tuple((cell, plans.get(cell.plan)) for cell in group), selftests)
        for group in cells.builds(selection.mine).values()
    )
    return pipeline.RunOptions(
        targets=targets,
        jobs=args.jobs,
        accel=getattr(args, "accel", "tcg"),
        cache_dir=args.cache_dir,
        run_dir=_new_run_dir(args.out).resolve(),
        limits=options.limits(args),
        clock=getattr(args, "clock", "auto"),
    )


def _shell(args: argparse.Namespace) -> int:
    if not sys.stdin.isatty():
        raise UsageError("gupvm shell needs a terminal on its standard input; run it from one")
    selection = _select(args)
    if len(selection.mine) != 1:
        raise UsageError(f"gupvm shell boots one kernel with one plan's setup; this command line has "
                         f"{len(selection.mine)} cells (give at most one --kernel-src, --arch and --plan)")
    plans = _plans(args, selection)
    with progress.reporter_for() as reporter:
        options = _options(args, selection, plans, reporter)
    return shell.run(options)


def _untestable_commit(args: argparse.Namespace) -> bool:
    """--git-bisect-codes on a tree from before gup_benchmark: a commit git bisect must skip."""
    trees = [Path(spec).expanduser() for spec in options.kernel_specs(args) if not spec.startswith("debian:")]
    return any((tree / "Kbuild").is_file() and not any((tree / "mm" / name).is_file()
                                                       for name in ("gup_test.c", "gup_benchmark.c"))
               for tree in trees)


def _run(args: argparse.Namespace) -> int:
    # Decided now: a later change of directory cannot send the results elsewhere.
    args.out, args.cache_dir = args.out.absolute(), args.cache_dir.absolute()
    junit = getattr(args, "junit", None) and args.junit.absolute()
    git_codes = getattr(args, "git_bisect_codes", False)
    if git_codes and _untestable_commit(args):
        print("gupvm: this commit has no mm/gup_test.c or mm/gup_benchmark.c: it cannot be tested", file=sys.stderr)
        return GIT_CANNOT_TEST
    selection = _select(args)
    plans = _plans(args, selection)
    with progress.reporter_for() as reporter:
        options = _options(args, selection, plans, reporter)
        try:
            suites = pipeline.run(options, reporter)
        except UsageError as error:
            if not git_codes:  # a config this commit cannot meet
                raise
            print(f"gupvm: {error} (exit {GIT_CANNOT_TEST} for git bisect: cannot test this commit)", file=sys.stderr)
            return GIT_CANNOT_TEST
    run_dir = options.run_dir
    run = RunDir(run_dir)
    junit_path = junit or run.junit
    report_failed = False
    with interrupt.shielded():  # a second signal now must not cost the results
        try:
            report.write_reports(suites, run)  # the run directory is whole for merge
            if junit_path != run.junit:
                junit_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(run.junit, junit_path)
        except OSError as error:
            print(f"gupvm: error: {error}", file=sys.stderr)
            report_failed, junit_path = True, run.junit
        merge.write_manifest(run, selection.every, selection.mine, selection.shard)
        if getattr(args, "kcidb", None):
            kcidb.write(args.kcidb, report.records(suites))
        print(report.summary(suites))
        print(f"gupvm: results in {run_dir}, JUnit in {junit_path}", flush=True)
    return run_exit_code(suites, signum=interrupt.received(), report_failed=report_failed, git_codes=git_codes)


def run_exit_code(suites: list[SuiteResult], *, signum: int | None, report_failed: bool, git_codes: bool) -> int:
    """The exit code of a run (the README's table), or as `git bisect run` takes it with --git-bisect-codes."""
    code = exit_codes.decide(
        signum=signum,
        infrastructure_failed=report_failed or any(suite.infrastructure_failed for suite in suites),
        tests_failed=any(suite.tests_failed for suite in suites),
    )
    if git_codes and code not in (exit_codes.PASSED, exit_codes.TEST_FAILED) and signum is None:
        return git_bisect_code(suites, report_failed)
    return code


def git_bisect_code(suites: list[SuiteResult], report_failed: bool) -> int:
    """A run that could not test the kernel, as `git bisect run` takes it: the commit's own build or boot
    failure is 125 (skip it), the host's trouble 128 (stop the bisection)."""
    stages = {failure_stage(suite.build, suite.boot) for suite in suites} - {None}
    return GIT_CANNOT_TEST if stages and CommitStage.INFRA not in stages and not report_failed else GIT_ABORT


def _merge(args: argparse.Namespace) -> int:
    code, line = merge.merge_runs(args.out, args.run_dirs)
    if args.kcidb:
        kcidb.write(args.kcidb, json.loads(RunDir(args.out).results.read_text()))
    print(line)
    return code


def _compare(args: argparse.Namespace) -> int:
    base = [compare.load_run(path) for path in compare.find_runs(args.base)]
    head = [compare.load_run(path) for path in compare.find_runs(args.head)]
    result = compare.compare(base, head, args.fail_on_slower)
    out_dir = _new_run_dir(args.out).resolve()
    junit_path = args.junit or RunDir(out_dir).junit
    compare_report.write_all(result, out_dir, junit_path)
    print(compare_report.table(result))
    print(f"gupvm: comparison in {out_dir} (compare.html, compare.json), JUnit in {junit_path}")
    return result.exit_code


def _bisect(args: argparse.Namespace) -> int:
    request, place, resumed = options.bisect_command(args)
    with progress.reporter_for() as reporter:
        code, closing = bisect.run_command(request, place, _new_run_dir, reporter, resumed)
    print("\n".join(closing))
    return code


def _presubmit(args: argparse.Namespace) -> int:
    if not args.kernel_src or args.kernel_src.startswith("debian:"):
        raise UsageError("presubmit needs --kernel-src PATH, a git checkout of the kernel")
    repo = Repo(Path(args.kernel_src))
    plan = samples.with_samples(load_plan(args.plan), args.samples)
    chosen = presubmit.PresubmitOptions(
        repo=repo,
        sides=presubmit.choose_sides(repo, args.base, args.head),
        each=args.each,
        requests=tuple((arch, ConfigRequest.for_plans(arch, args.kconfig, args.kconfig_add, (plan,)))
                       for arch in select_arches(args.arch)),
        plan=plan,
        jobs=args.jobs,
        accel=args.accel,
        clock=args.clock,
        cache_dir=args.cache_dir,
        out_dir=_new_run_dir(args.out).resolve(),
        limits=options.limits(args),
        fail_on_slower=args.fail_on_slower,
        junit=args.junit,
    )
    with progress.reporter_for() as reporter:
        code, summary = presubmit.run(chosen, reporter)
    print("\n".join(summary))
    return code


_COMMANDS = {
    "doctor": lambda args: doctor.run(args.cache_dir),
    "cache": lambda args: cache.run(args.cache_dir, args.action, args.older_than),
    "bisect": _bisect,
    "cells": _list_cells,
    "compare": _compare,
    "merge": _merge,
    "presubmit": _presubmit,
    "shell": _shell,
}


def main(argv: list[str] | None = None) -> int:
    """The gupvm command: parse, check every option, run the command; the exit code of README's table."""
    git_codes = "--git-bisect-codes" in (sys.argv[1:] if argv is None else argv)  # a usage error aborts it too
    try:
        with interrupt.handling_signals():
            args = build_parser().parse_args(argv)
            options.check(args)
            return _COMMANDS.get(args.command, _run)(args)
    except GupvmError as error:
        print(f"gupvm: error: {error}", file=sys.stderr)
        return GIT_ABORT if git_codes else error.exit_code
    except interrupt.Interrupted as signal:  # before the run directory was made: nothing to report
        print(f"gupvm: interrupted by {signal.name}", file=sys.stderr)
        return exit_codes.for_signal(signal.signum)
