"""One gupvm run: for each kernel build, configure, build, then boot each plan of it, check, report.

Every build is configured and verified before any kernel is built, so a
config that cannot be satisfied stops the run early. The guest's programs
need no config: they are built meanwhile, at low priority, on the core that
the single-threaded config steps leave idle. A signal (SIGINT, SIGTERM)
stops the run where it is; what finished is reported, the rest is marked.
"""

import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from orchestrator import (
    boot,
    build,
    cells,
    config,
    features,
    guest,
    gup_programs,
    hostfacts,
    interrupt,
    known,
    progress,
    protocol,
    qemu,
)
from orchestrator.arches import Arch
from orchestrator.cells import Cell
from orchestrator.check import check_step
from orchestrator.errors import InfrastructureError
from orchestrator.interrupt import Interrupted, signal_name
from orchestrator.layout import Cache, RunDir
from orchestrator.plan import Plan, on_arch
from orchestrator.results import StageResult, Status, StepResult, SuiteResult
from orchestrator.source import KernelSource


@dataclass(frozen=True)
class BuildTarget:
    """One kernel build, (kernel, arch), and the cells that boot it."""

    source: KernelSource
    arch: Arch
    request: config.ConfigRequest
    cells: tuple[tuple[Cell, Plan | None], ...]  # plan None: build only
    selftests: KernelSource | None = None  # where the selftests other than gup_test come from, if not the kernel

    @property
    def name(self) -> str:
        return self.cells[0][0].build_id

    @property
    def build_stem(self) -> str:
        return self.cells[0][0].build_stem


def single_kernel_targets(kernel_source: KernelSource, spec: str,
                          requests: tuple[tuple[Arch, config.ConfigRequest], ...],
                          plan: Plan | None) -> tuple[BuildTarget, ...]:
    """One kernel on each requested arch with one plan (or build only): what bisect and presubmit run."""
    arches = {arch.name: (arch, request) for arch, request in requests}
    product = cells.product([spec], list(arches), [plan.name] if plan else None)
    return tuple(BuildTarget(kernel_source, *arches[cell.arch], ((cell, plan),)) for cell in product)


@dataclass(frozen=True)
class RunOptions:
    targets: tuple[BuildTarget, ...]
    jobs: int
    accel: str
    cache_dir: Path
    run_dir: Path
    limits: boot.BootLimits
    clock: str = "auto"  # a name in qemu.CLOCKS, or auto: the accelerator's default


@dataclass(frozen=True)
class Configured:
    target: BuildTarget
    final: config.FinalConfig
    build_dir: Path


def run(options: RunOptions, reporter: progress.Reporter) -> list[SuiteResult]:
    """Configure and verify every target, then build and boot each; the suites of every cell, whatever failed.

    A build or boot failure is its suite's stage result, never an exception; a signal stops the run and
    marks what it stopped as interrupted.
    """
    try:
        with _prepared(options, reporter) as (configured, tools):
            suites = []
            for item in configured:
                if signum := interrupt.received():  # an earlier build was interrupted
                    stopped = StageResult(Status.INTERRUPTED, f"not run: {signal_name(signum)} stopped gupvm")
                    suites += _not_run(item.target, stopped)
                    continue
                suites += run_target(options, item, tools[item.target.name], reporter)
            return suites
    except Interrupted as signal:
        stopped = StageResult(Status.INTERRUPTED, f"{signal.name} during the config")
        return [suite for target in options.targets for suite in _not_run(target, stopped)]


def _not_run(target: BuildTarget, build_stage: StageResult) -> list[SuiteResult]:
    return [SuiteResult(cell.suite_name, {"arch": target.arch.name}, build_stage,
                        StageResult(Status.SKIPPED, "the build did not finish"), ()) for cell, _ in target.cells]


@contextmanager
def _prepared(options: RunOptions, reporter: progress.Reporter) -> Iterator[tuple[list[Configured], dict[str, Future]]]:
    """Every target configured, with its guest programs building in the background."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        tools = {
            target.name: pool.submit(guest.build_guest_tools, target.source, target.arch, options.cache_dir,
                                     RunDir(options.run_dir).guest_log(target.build_stem), target.selftests)
            for target in options.targets
        }
        try:
            configured = configure_all(options, reporter)
            yield configured, tools
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        if interrupt.received():
            pool.shutdown(cancel_futures=True)


def prepare_one(options: RunOptions, reporter: progress.Reporter) -> tuple[Configured, build.BuiltKernel,
                                                                           guest.GuestTools]:
    """The single target's config, kernel and guest programs, for booting it some other way (gupvm shell)."""
    with _prepared(options, reporter) as (configured, tools):
        (item,) = configured
        return (item, *build_target(options, item, tools[item.target.name], reporter))


def configure_all(options: RunOptions, reporter: progress.Reporter) -> list[Configured]:
    """Every target's config merged and verified before any kernel is built: an unmet option stops the
    run before the first build.
    """
    configured = []
    for target in options.targets:
        build_dir = build.build_dir_for(options.cache_dir, target.source, target.arch, target.request.key())
        log = RunDir(options.run_dir).build_log(target.build_stem)
        with reporter.stage(f"{target.name} config"), build.build_dir_lock(build_dir):
            final = config.configure(target.source, target.arch, target.request, build_dir, options.cache_dir, log,
                                     options.jobs)
        RunDir(options.run_dir).config(target.build_stem).write_text(final.text)
        configured.append(Configured(target, final, build_dir))
    return configured


def run_target(options: RunOptions, item: Configured, tools: Future,
               reporter: progress.Reporter) -> list[SuiteResult]:
    """One kernel built (or found kept) and each of its cells booted with its plan."""
    target = item.target
    arch, source = target.arch, target.source
    properties = {
        "arch": arch.name,
        "kernel_source": source.identity,
        "kernel_version": source.version,
        "config_hash": item.final.hash,
        "page_size": str(arch.page_size),
        "huge_page_size": str(arch.huge_page_size),
        "pae": "yes" if arch.pae else "no",
        "bits": str(arch.bits),
    }
    started = time.monotonic()
    try:
        kernel, guest_tools = build_target(options, item, tools, reporter)
    except InfrastructureError as error:
        failed = StageResult(Status.FAILED, str(error).splitlines()[0], time.monotonic() - started, str(error),
                             error.blame)
        return [SuiteResult(cell.suite_name, properties, failed, StageResult(Status.SKIPPED, "the build failed"), ())
                for cell, _ in target.cells]
    except Interrupted as signal:
        stopped = StageResult(Status.INTERRUPTED, f"{signal.name} during the build", time.monotonic() - started)
        not_booted = StageResult(Status.SKIPPED, "the build did not finish")
        return [SuiteResult(cell.suite_name, properties, stopped, not_booted, ()) for cell, _ in target.cells]
    properties.update(kernel_release=kernel.release, kernel_build="rebuilt" if kernel.rebuilt else "cached")
    build_stage = StageResult(Status.PASSED, "" if kernel.rebuilt else "cached", time.monotonic() - started)
    suites = []
    for cell, plan in target.cells:
        if plan is None:
            suites.append(SuiteResult(cell.suite_name, properties, build_stage,
                                      StageResult(Status.SKIPPED, "build only"), ()))
        elif signum := interrupt.received():
            suites.append(SuiteResult(cell.suite_name, properties, build_stage,
                                      StageResult(Status.INTERRUPTED, f"not run: {signal_name(signum)} stopped gupvm"),
                                      ()))
        else:
            suites.append(run_cell(options, item, cell, plan, kernel, guest_tools, dict(properties), build_stage,
                                   reporter))
        # The next cell boots the same kernel: its time is the first cell's.
        build_stage = StageResult(Status.PASSED, f"the kernel of {target.cells[0][0].id}", 0.0)
    return suites


def build_target(options: RunOptions, item: Configured, tools: Future,
                 reporter: progress.Reporter) -> tuple[build.BuiltKernel, guest.GuestTools]:
    """The kernel, built or from the cache, and the guest's programs."""
    target = item.target
    started = time.monotonic()
    log = RunDir(options.run_dir).build_log(target.build_stem)
    watch = progress.BuildWatch(log, progress.last_build(options.cache_dir, item.final.hash))
    with reporter.stage(f"{target.name} build", watch.detail) as stage, build.build_dir_lock(item.build_dir):
        kernel = build.build_kernel(target.source, target.arch, item.final, item.build_dir, options.jobs, log,
                                    Cache(options.cache_dir))
        stage.result = f"{watch.compiled()} files compiled" if kernel.rebuilt else "cached"
    if kernel.rebuilt:
        progress.record_build(options.cache_dir, item.final.hash, watch.compiled(), time.monotonic() - started)
    if not tools.done():
        with reporter.stage(f"{target.name} guest programs"):
            tools.result()
    return kernel, tools.result()


def run_cell(options: RunOptions, item: Configured, cell: Cell, plan: Plan, kernel: build.BuiltKernel,
             guest_tools: guest.GuestTools, properties: dict[str, str], build_stage: StageResult,
             reporter: progress.Reporter) -> SuiteResult:
    """One cell: boot the kernel with the plan's steps, check each capture, and say how the boot went."""
    arch, source = item.target.arch, item.target.source
    properties["plan"] = plan.name
    plan = on_arch(plan, arch)
    kernel_features, gaps = config.kernel_features(source, plan.features)
    if plan.features:
        properties["features"] = " ".join(feature.name for feature in kernel_features) or "none"
    programs = gup_programs.tree_programs(source.selftests_dir,
                                          item.target.selftests.selftests_dir if item.target.selftests else None)
    if item.target.selftests:
        properties["selftests_source"] = item.target.selftests.identity
    commands = gup_programs.plan_commands(plan, arch, source.version, programs, gaps,
                                          gup_programs.tree_values(source.path))
    console_log = RunDir(options.run_dir).console_log(cell.file_stem)
    started = time.monotonic()
    try:
        clock, accel = qemu.choose_clock_and_accel(options.clock, options.accel, arch, kernel.image, options.cache_dir)
        properties.update(accel=accel, clock=clock.name, **hostfacts.host_facts(arch))
        watch = progress.ConsoleWatch(console_log, len(plan.steps))
        with reporter.stage(f"{cell.id} boot", watch.detail):
            record = _boot(options, item.target, plan, accel, clock, commands, kernel_features, kernel, guest_tools,
                           console_log)
    except InfrastructureError as error:
        failed = StageResult(Status.FAILED, str(error).splitlines()[0], time.monotonic() - started, str(error),
                             error.blame)
        return SuiteResult(cell.suite_name, properties, build_stage, failed, ())
    except Interrupted as signal:  # before the first boot began
        record = boot.BootRecord({}, 0, 0.0, (), signal.name)
    properties["boots"] = str(record.boots)
    properties.update({f"guest_{key}": value for key, value in record.environment.items()})
    accounting = gup_programs.pin_accounting(source.path, arch.bits)
    properties["exact_pincount_order"] = str(accounting.exact_pincount_order)
    properties["far_tails_dumped_alone"] = "yes" if accounting.far_tails_dumped_alone else "no"
    steps = [known.apply(check_step(plan.steps[capture.index - 1], capture, arch, commands[capture.index - 1],
                                    record.environment, accounting), source.version, arch.name)
             for capture in record.captures]
    boot_stage = StageResult(Status.PASSED, f"{record.boots} boot(s)", record.seconds)
    if record.interrupted:
        where = (f"step {len(steps) + 1} ({plan.steps[len(steps)].name})" if len(steps) < len(plan.steps)
                 else "the guest's shutdown")
        boot_stage = StageResult(Status.INTERRUPTED, f"{record.interrupted} during {where}", record.seconds)
        steps += [StepResult(step, Status.INTERRUPTED, f"not run: {record.interrupted} stopped gupvm", 0.0, "")
                  for step in plan.steps[len(steps):]]
    return SuiteResult(cell.suite_name, properties, build_stage, boot_stage, tuple(steps))


def _boot(options: RunOptions, target: BuildTarget, plan: Plan, accel: str, clock: qemu.Clock,
          commands: tuple[gup_programs.StepCommand, ...], kernel_features: tuple[features.Feature, ...],
          kernel: build.BuiltKernel, tools: guest.GuestTools, console_log: Path) -> boot.BootRecord:
    with tempfile.TemporaryDirectory(prefix="gupvm-") as scratch:
        initramfs = Path(scratch) / "initramfs.cpio"
        images = guest.feature_images(kernel_features, options.cache_dir,
                                      RunDir(options.run_dir).guest_log(target.build_stem))
        guest.write_initramfs(tools, protocol.render_init(plan, target.arch, commands, kernel_features), initramfs,
                              images)
        return boot.run_plan(target.arch, accel, kernel.image, initramfs, plan, console_log, options.limits, clock,
                             protocol.kernel_args(plan, target.arch, kernel_features))
