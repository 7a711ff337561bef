"""gupvm doctor: is this host able to build and boot test kernels?"""

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator import interrupt
from orchestrator.arches import all_arches
from orchestrator.paths import find_program
from orchestrator.qemu import kvm_usable
from orchestrator.source import DEBIAN_TARBALLS, DEFAULT_SOURCE

DEFAULT_SERIES = DEFAULT_SOURCE.removeprefix("debian:")

MIN_FREE_GIB = 5
SETUP_HINT = "run ci/setup-debian.sh"
# What building a kernel and the guest's programs runs, and the Debian package of each.
BUILD_TOOLS = (("gcc", "gcc"), ("make", "make"), ("flex", "flex"), ("bison", "bison"), ("bc", "bc"),
               ("rsync", "rsync"), ("cpio", "cpio"), ("apt-get", "apt"),
               ("apt-cache", "apt"), ("dpkg-deb", "dpkg"), ("mkfs.ext4", "e2fsprogs"))


@dataclass(frozen=True)
class Finding:
    ok: bool
    what: str
    detail: str
    required: bool = True


def _tool(name: str, package: str) -> Finding:
    path = find_program(name)
    return Finding(bool(path), name, path or f"missing: apt-get install {package}")


def _links_static(compiler: str, packages: str) -> Finding:
    """A static program with threads, as the guests' programs are, links with this compiler."""
    with tempfile.TemporaryDirectory() as scratch:
        program = Path(scratch) / "t.c"
        program.write_text("#include <pthread.h>\nint main(void){return 0;}\n")
        result = interrupt.run([compiler, "-static", "-pthread", str(program), "-o", f"{scratch}/t"],
                               capture_output=True, text=True)
    detail = "ok" if result.returncode == 0 else f"cannot link static programs: apt-get install {packages}"
    return Finding(result.returncode == 0, f"{compiler} -static", detail)


def findings(cache_dir: Path) -> list[Finding]:
    checks = [_tool(name, package) for name, package in BUILD_TOOLS]
    tools = sorted({tool for arch in all_arches().values() for tool in arch.host_tools()} - set(BUILD_TOOLS))
    checks += [_tool(tool, packages) for tool, packages in tools]
    compilers = sorted({arch.compiler_tool for arch in all_arches().values()})
    checks += [_links_static(compiler, packages) for compiler, packages in compilers if shutil.which(compiler)]
    for header, package in [("libelf.h", "libelf-dev"), ("openssl/ssl.h", "libssl-dev")]:
        present = Path("/usr/include", header).is_file()
        checks.append(Finding(present, header, "ok" if present else f"missing: apt-get install {package}"))
    tarball = DEBIAN_TARBALLS / f"linux-source-{DEFAULT_SERIES}.tar.xz"
    checks.append(Finding(tarball.is_file(), DEFAULT_SOURCE, str(tarball) if tarball.is_file()
                          else f"not installed (fetched at first use): apt-get install linux-source-{DEFAULT_SERIES}",
                          required=False))
    ccache = shutil.which("ccache")
    checks.append(Finding(bool(ccache), "ccache", ccache or "missing (optional): rebuilds are slower", required=False))
    checks.append(Finding(True, "kvm", "usable /dev/kvm; 'auto' probes it with a short boot" if kvm_usable()
                          else "no usable /dev/kvm: guests run under TCG", required=False))
    cache_dir.mkdir(parents=True, exist_ok=True)
    free_gib = shutil.disk_usage(cache_dir).free / 2**30
    checks.append(Finding(free_gib >= MIN_FREE_GIB, "disk", f"{free_gib:.0f} GiB free in {cache_dir}"
                          + ("" if free_gib >= MIN_FREE_GIB else f", want {MIN_FREE_GIB} GiB")))
    return checks


def run(cache_dir: Path) -> int:
    results = findings(cache_dir)
    for finding in results:
        label = "ok" if finding.ok else ("FAIL" if finding.required else "warn")
        print(f"{label:<5} {finding.what:<30} {finding.detail}")
    broken = [finding for finding in results if finding.required and not finding.ok]
    if broken:
        print(f"gupvm doctor: {len(broken)} problem(s); {SETUP_HINT}")
        return 3
    print("gupvm doctor: this host can build and boot test kernels")
    return 0
