"""gupvm shell: the kernel a run boots, with the plan's setup done, and its console handed to the user.

To dig into a failure by hand: gup_test and the other programs of the
guest image are on PATH. Ctrl-] (pexpect's escape character) or the guest's
poweroff ends the session, and QEMU is killed either way.
"""

import tempfile
from pathlib import Path

from orchestrator import boot, config, guest, pipeline, progress, protocol, qemu
from orchestrator.layout import RunDir

ESCAPE = "\x1d"  # Ctrl-]


def run(options: pipeline.RunOptions) -> int:
    """Boot the kernel with the plan's setup and hand its console to the user; the exit code when it ends."""
    (target,) = options.targets
    (cell, plan), = target.cells
    with progress.reporter_for() as reporter:
        _, kernel, tools = pipeline.prepare_one(options, reporter)
    arch = target.arch
    accel = qemu.choose_accel(options.accel, arch, kernel.image, options.cache_dir)
    console_log = RunDir(options.run_dir).console_log(cell.file_stem)
    kernel_features, _ = config.kernel_features(target.source, plan.features)
    with tempfile.TemporaryDirectory(prefix="gupvm-") as scratch:
        initramfs = Path(scratch) / "initramfs.cpio"
        images = guest.feature_images(kernel_features, options.cache_dir,
                                      RunDir(options.run_dir).guest_log(target.build_stem))
        guest.write_initramfs(tools, protocol.render_shell_init(plan, arch, kernel_features), initramfs, images)
        command = qemu.qemu_command(arch, accel, kernel.image, initramfs,
                                    qemu.kernel_command_line(arch, *protocol.kernel_args(plan, arch, kernel_features),
                                                             "gupvm.shell=1"), console_signals=False)
        print(f"gupvm: booting {cell.build_id} (kernel {kernel.release}, {accel}) with the {plan.name} plan's "
              f"setup; console log: {console_log}", flush=True)
        with console_log.open("a") as log, qemu.running(command, logfile=log) as child:
            environment = boot.wait_ready(child, options.limits.boot_seconds, console_log)
            print(f"gupvm: guest ready ({' '.join(f'{k}={v}' for k, v in environment.items())}); "
                  f"gup_test etc. are on PATH; poweroff or Ctrl-] ends the session", flush=True)
            # interact() passes bytes, which a text log cannot take: the console log is kept by a filter.
            child.logfile_read = None
            child.interact(escape_character=ESCAPE, output_filter=lambda data: _keep(log, data))
    print("\ngupvm: shell ended, QEMU stopped")
    return 0


def _keep(log, data: bytes) -> bytes:
    log.write(data.decode(errors="replace"))
    log.flush()
    return data
