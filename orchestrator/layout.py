"""Where gupvm's files lie: every file of a run directory and every folder of the cache, named once.

Whatever writes a file and whatever reads it back (pipeline and presubmit,
report and merge and compare, bisect, `gupvm cache`, the benchmarks and
tests) take its name from here, so a name is never spelled twice.
"""

from dataclasses import dataclass
from pathlib import Path

# The files of a run directory (each `gupvm run`, and each run that bisect and presubmit make).
RESULTS = "results.json"
JUNIT = "junit.xml"
MANIFEST = "cells.json"  # the cells of the command line and the ones this directory ran (merge reads it)


@dataclass(frozen=True)
class RunDir:
    """One run's directory: its reports, and a build log, guest log, .config and console log per kernel."""

    path: Path

    @property
    def results(self) -> Path:
        return self.path / RESULTS

    @property
    def junit(self) -> Path:
        return self.path / JUNIT

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    def build_log(self, build_stem: str) -> Path:
        return self.path / f"build-{build_stem}.log"

    def guest_log(self, build_stem: str) -> Path:
        return self.path / f"guest-{build_stem}.log"

    def config(self, build_stem: str) -> Path:
        """The verified .config the kernel was built with."""
        return self.path / f"config-{build_stem}"

    def console_log(self, cell_stem: str) -> Path:
        return self.path / f"console-{cell_stem}.log"

    def configs(self) -> dict[str, Path]:
        """The .config of each kernel this run built, by its build stem."""
        return {path.name.removeprefix("config-"): path for path in sorted(self.path.glob("config-*"))}


# A bisection's directory: its state, and a run directory per tested commit.
BISECT_STATE = "bisect.json"
TRACEBACK = "traceback.txt"  # a tester's own failure, in a commit's run directory


def commit_run(bisect_dir: Path, number: int, commit: str) -> RunDir:
    return RunDir(bisect_dir / "commits" / f"{number:02d}-{commit[:12]}")


# A comparison's directory (gupvm compare, gupvm presubmit).
COMPARE_JSON = "compare.json"
COMPARE_HTML = "compare.html"
CONFIG_DIFF = "config.diff"


def presubmit_build(out_dir: Path, label: str) -> RunDir:
    """The build-only run of a side ("base", "head") or of a series commit."""
    return RunDir(out_dir / f"build-{label}")


def presubmit_boot(out_dir: Path, side: str, number: int) -> RunDir:
    return RunDir(out_dir / side / f"boot-{number:02d}")


def series_boot(out_dir: Path, commit: str, number: int) -> RunDir:
    return RunDir(out_dir / "each" / commit[:12] / f"boot-{number:02d}")


@dataclass(frozen=True)
class Cache:
    """The cache's folders."""

    root: Path

    def entry_folders(self) -> dict[Path, str]:
        """The folders whose entries `gupvm cache` lists and prunes, with what a user calls an entry."""
        return {self.sources: "unpacked source tree", self.tarballs: "fetched source tarball",
                self.builds: "build directory", self.guest_programs: "guest programs",
                self.guest_debs: "Debian package of the guest's arch", self.guest_images: "filesystem image",
                self.configs: "verified .config", self.kernels: "kept kernel", self.worktrees: "bisect worktree",
                self.kept_checkouts: "presubmit checkout", self.apt: "private apt state"}

    @property
    def sources(self) -> Path:
        return self.root / "src"

    @property
    def tarballs(self) -> Path:
        return self.root / "debian"

    @property
    def builds(self) -> Path:
        return self.root / "builds"

    @property
    def guest_programs(self) -> Path:
        return self.root / "guest"

    @property
    def guest_images(self) -> Path:
        return self.root / "guest-images"

    @property
    def guest_lock(self) -> Path:
        return self.root / "guest.lock"

    @property
    def guest_debs(self) -> Path:
        """Packages of the guest's Debian arch, unpacked: busybox-static, the selftests' static libraries."""
        return self.root / "guest-debs"

    @property
    def configs(self) -> Path:
        return self.root / "configs"

    @property
    def kernels(self) -> Path:
        """Finished kernels kept by (arch, source state, config): see kept_kernel."""
        return self.root / "kernels"

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    @property
    def kept_checkouts(self) -> Path:
        return self.root / "checkouts-kept"

    @property
    def apt(self) -> Path:
        return self.root / "apt"

    @property
    def accel_probe(self) -> Path:
        return self.root / "accel-probe.json"

    @property
    def build_stats(self) -> Path:
        return self.root / "build-stats.json"

    @property
    def test_histories(self) -> Path:
        """Kernel git histories the end-to-end tests and benchmarks make."""
        return self.root / "test-histories"

    def kept_kernel(self, arch: str, fingerprint: str, config_hash: str) -> Path:
        return self.kernels / f"{arch}-{fingerprint}-{config_hash}"

    def kept_kernels(self, arch: str = "*", fingerprint: str = "*", config_hash: str = "*") -> list[Path]:
        return sorted(self.kernels.glob(f"{arch}-{fingerprint}-{config_hash}"))
