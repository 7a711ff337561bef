"""Building the kernel out of tree, cached.

One build directory per (tree, arch, config request) keeps objects across
tree states, so a small change rebuilds incrementally, and lets two configs
of one tree live side by side (two runs at once never rebuild each other's
kernel); a stamp of the source fingerprint and config hash lets an
unchanged rerun skip make entirely. Finished kernels are also kept by
(source state, config) in a store, so a kernel built once (a presubmit's
base) is never built again, whatever the build directory built since.
"""

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.arches import Arch
from orchestrator.config import FinalConfig, install_config
from orchestrator.errors import Blame, InfrastructureError
from orchestrator.layout import Cache
from orchestrator.paths import exclusive, mark_used, write_atomically
from orchestrator.source import KernelSource
from orchestrator.tools import run_logged

STAMP_NAME = "gupvm-stamp.json"
LAST_LOG_NAME = "gupvm-build.log"  # the log of the build that made the kernel in this directory


@dataclass(frozen=True)
class BuiltKernel:
    image: Path
    build_dir: Path
    release: str
    rebuilt: bool


def build_dir_for(cache_dir: Path, source: KernelSource, arch: Arch, config_key: str) -> Path:
    return Cache(cache_dir).builds / f"{source.slot}-{arch.name}-{config_key[:12]}"


def build_dir_lock(build_dir: Path):
    """Held while configuring or building: one gupvm at a time in a build directory."""
    return exclusive(build_dir.with_name(build_dir.name + ".lock"))


def _from_store(entry: Path, arch: Arch, build_dir: Path, log: Path) -> BuiltKernel | None:
    image = entry / Path(arch.kernel_image).name
    if not image.is_file():
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as log_file:
        log_file.write(f"# kept in {entry}: make not run\n")
    return BuiltKernel(image=image, build_dir=build_dir, release=(entry / "release").read_text().strip(), rebuilt=False)


def _keep(entry: Path, image: Path, release: str, config: Path) -> None:
    """Copy a finished kernel and its .config into the store; renamed into place, so an entry is whole or absent."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=entry.name + ".", dir=entry.parent))
    shutil.copyfile(image, scratch / image.name)
    shutil.copyfile(config, scratch / "config")
    (scratch / "release").write_text(release + "\n")
    try:
        os.rename(scratch, entry)
    except OSError:  # another run kept the same kernel first
        shutil.rmtree(scratch, ignore_errors=True)


def build_kernel(
    source: KernelSource, arch: Arch, final: FinalConfig, build_dir: Path, jobs: int, log: Path,
    store: Cache | None = None,
) -> BuiltKernel:
    """store: the cache whose finished kernels are kept by (source state, config); None keeps none."""
    entry = store.kept_kernel(arch.name, source.fingerprint, final.hash) if store else None
    if entry and (kept := _from_store(entry, arch, build_dir, log)):
        return kept
    image = build_dir / arch.kernel_image
    stamp_path = build_dir / STAMP_NAME
    stamp = {"source": source.fingerprint, "config": final.hash}
    up_to_date = image.is_file() and stamp_path.is_file() and json.loads(stamp_path.read_text()) == stamp
    last_log = build_dir / LAST_LOG_NAME
    if up_to_date:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as log_file:
            log_file.write(f"# up to date in {build_dir} (source {source.fingerprint}, config {final.hash}): "
                           f"make not run; the log of the build that made it follows\n")
            log_file.write(last_log.read_text() if last_log.is_file() else "# (no log kept)\n")
    else:
        stamp_path.unlink(missing_ok=True)
        install_config(final, build_dir)
        target = Path(arch.kernel_image).name
        run_logged(
            ["make", "-C", str(source.path), f"O={build_dir}", *arch.make_variables, f"-j{jobs}", target],
            what=f"kernel build ({arch.name})",
            log=log,
        )
        if not image.is_file():
            raise InfrastructureError(f"kernel build ({arch.name}) made no {arch.kernel_image}; see {log}",
                                      Blame.KERNEL)
        shutil.copyfile(log, last_log)
        write_atomically(stamp_path, json.dumps(stamp))  # last, and whole: only a finished kernel has a stamp
    mark_used(build_dir)
    release = (build_dir / "include/config/kernel.release").read_text().strip()
    if entry:
        _keep(entry, image, release, build_dir / ".config")
    return BuiltKernel(image=image, build_dir=build_dir, release=release, rebuilt=not up_to_date)
