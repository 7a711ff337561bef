"""One gupvm run: for each arch, configure, build, boot the plan, check, report.

Every arch is configured and verified before any kernel is built, so a
config that cannot be satisfied stops the run early. The guest's programs
need no config: they are built meanwhile, at low priority, on the core that
the single-threaded config steps leave idle.
"""

import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from orchestrator import boot, build, config, guest, gup_programs, hostfacts, interrupt, protocol, qemu
from orchestrator.arches import Arch
from orchestrator.check import StepResult, check_step
from orchestrator.errors import InfrastructureError
from orchestrator.interrupt import Interrupted, signal_name
from orchestrator.plan import Plan
from orchestrator.report import StageResult, SuiteResult
from orchestrator.source import KernelSource


@dataclass(frozen=True)
class RunOptions:
    source: KernelSource
    requests: tuple[tuple[Arch, config.ConfigRequest], ...]
    plan: Plan | None  # None: build only
    jobs: int
    accel: str
    cache_dir: Path
    run_dir: Path
    limits: boot.BootLimits
    clock: str = "auto"  # a name in qemu.CLOCKS, or auto: the accelerator's default


@dataclass(frozen=True)
class Configured:
    arch: Arch
    final: config.FinalConfig
    build_dir: Path


def run(options: RunOptions, announce=print) -> list[SuiteResult]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        tools = {
            arch.name: pool.submit(guest.build_guest_tools, options.source, arch, options.cache_dir,
                                   options.run_dir / f"guest-{arch.name}.log")
            for arch, _ in options.requests
        }
        try:
            configured = configure_all(options)
        except Interrupted as signal:
            pool.shutdown(cancel_futures=True)
            stopped = StageResult("interrupted", f"{signal.name} during the config")
            return [_not_run(options, arch, stopped) for arch, _ in options.requests]
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
        suites = []
        for item in configured:
            if signum := interrupt.received():  # an earlier arch was interrupted
                name = signal_name(signum)
                suites.append(_not_run(options, item.arch, StageResult("skipped", f"not run: {name} stopped gupvm")))
                continue
            announce(f"gupvm: {item.arch.name}: building {options.source.identity} (config {item.final.hash})")
            suites.append(run_suite(options, item, tools[item.arch.name]))
        if interrupt.received():
            pool.shutdown(cancel_futures=True)
        return suites


def _not_run(options: RunOptions, arch: Arch, build_stage: StageResult) -> SuiteResult:
    return SuiteResult(f"{arch.name} linux-{options.source.version}", {"arch": arch.name}, build_stage,
                       StageResult("skipped", "the build did not finish"), ())


def configure_all(options: RunOptions) -> list[Configured]:
    configured = []
    for arch, request in options.requests:
        build_dir = build.build_dir_for(options.cache_dir, options.source, arch, request.key())
        log = options.run_dir / f"build-{arch.name}.log"
        with build.build_dir_lock(build_dir):
            final = config.configure(options.source, arch, request, build_dir, options.cache_dir, log, options.jobs)
        (options.run_dir / f"config-{arch.name}").write_text(final.text)
        configured.append(Configured(arch, final, build_dir))
    return configured


def run_suite(options: RunOptions, item: Configured, tools: Future) -> SuiteResult:
    arch, source = item.arch, options.source
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
    name = f"{arch.name} linux-{source.version}"
    started = time.monotonic()
    try:
        with build.build_dir_lock(item.build_dir):
            kernel = build.build_kernel(options.source, arch, item.final, item.build_dir, options.jobs,
                                        options.run_dir / f"build-{arch.name}.log", options.cache_dir / "kernels")
        guest_tools = tools.result()
    except InfrastructureError as error:
        failed = StageResult("failed", str(error).splitlines()[0], time.monotonic() - started, str(error))
        return SuiteResult(name, properties, failed, StageResult("skipped", "the build failed"), ())
    except Interrupted as signal:
        stopped = StageResult("interrupted", f"{signal.name} during the build", time.monotonic() - started)
        return SuiteResult(name, properties, stopped, StageResult("skipped", "the build did not finish"), ())
    properties.update(kernel_release=kernel.release, kernel_build="rebuilt" if kernel.rebuilt else "cached")
    build_stage = StageResult("passed", "" if kernel.rebuilt else "cached", time.monotonic() - started)
    if options.plan is None:
        return SuiteResult(name, properties, build_stage, StageResult("skipped", "build only"), ())
    plan = options.plan
    properties["plan"] = plan.name
    commands = gup_programs.plan_commands(plan, arch, source.version, gup_programs.tree_programs(source.selftests_dir))
    try:
        clock, accel = qemu.choose_clock_and_accel(options.clock, options.accel, arch, kernel.image, options.cache_dir)
        properties.update(accel=accel, clock=clock.name, **hostfacts.host_facts(arch))
        record = _boot(options, arch, accel, kernel, guest_tools, clock, commands)
    except InfrastructureError as error:
        failed = StageResult("failed", str(error).splitlines()[0], 0.0, str(error))
        return SuiteResult(name, properties, build_stage, failed, ())
    except Interrupted as signal:  # before the first boot began
        record = boot.BootRecord({}, 0, 0.0, (), signal.name)
    properties["boots"] = str(record.boots)
    properties.update({f"guest_{key}": value for key, value in record.environment.items()})
    steps = [check_step(plan.steps[capture.index - 1], capture, arch, commands[capture.index - 1])
             for capture in record.captures]
    boot_stage = StageResult("passed", f"{record.boots} boot(s)", record.seconds)
    if record.interrupted:
        where = (f"step {len(steps) + 1} ({plan.steps[len(steps)].name})" if len(steps) < len(plan.steps)
                 else "the guest's shutdown")
        boot_stage = StageResult("interrupted", f"{record.interrupted} during {where}", record.seconds)
        steps += [StepResult(step, "skipped", f"not run: {record.interrupted} stopped gupvm", 0.0, "")
                  for step in plan.steps[len(steps):]]
    return SuiteResult(name, properties, build_stage, boot_stage, tuple(steps))


def _boot(options: RunOptions, arch: Arch, accel: str, kernel: build.BuiltKernel, tools: guest.GuestTools,
          clock: qemu.Clock, commands: tuple[gup_programs.StepCommand, ...]):
    assert options.plan is not None
    with tempfile.TemporaryDirectory(prefix="gupvm-") as scratch:
        initramfs = Path(scratch) / "initramfs.cpio"
        guest.write_initramfs(tools, protocol.render_init(options.plan, arch, commands), initramfs)
        console_log = options.run_dir / f"console-{arch.name}.log"
        return boot.run_plan(arch, accel, kernel.image, initramfs, options.plan, console_log, options.limits, clock)
