"""Guest programs are keyed by the files they are built from, not by the whole tree."""

from pathlib import Path

from orchestrator.arches import all_arches
from orchestrator.guest import PACKAGE_VERSION, _inputs_key
from orchestrator.source import KernelSource

NAMES = ["gup_test", "cow"]


def test_only_selftests_uapi_headers_and_library_versions_change_the_key(tmp_path: Path):
    files = {
        "tools/testing/selftests/mm/gup_test.c": "int main(void) {}\n",
        "tools/testing/selftests/lib.mk": "# lib\n",
        "include/uapi/linux/mman.h": "#define A 1\n",
        "arch/x86/include/uapi/asm/mman.h": "#define B 1\n",
        "arch/arm64/include/uapi/asm/mman.h": "#define C 1\n",
        "mm/gup.c": "int gup;\n",
    }
    for name, text in files.items():
        (tmp_path / "linux" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "linux" / name).write_text(text)
    tree = KernelSource(tmp_path / "linux", "test", "fingerprint", "slot", "6.1.0")
    library = tmp_path / "liburing-dev_amd64"
    library.mkdir()
    (library / PACKAGE_VERSION).write_text("liburing-dev:amd64 2.3-3\n")
    arch = all_arches()["x86_64"]
    key = _inputs_key(tree, arch, (library,), NAMES)
    for name in ("mm/gup.c", "arch/arm64/include/uapi/asm/mman.h"):
        (tree.path / name).write_text("changed\n")
        assert _inputs_key(tree, arch, (library,), NAMES) == key, name
    for name in ("tools/testing/selftests/mm/gup_test.c", "tools/testing/selftests/lib.mk",
                 "include/uapi/linux/mman.h", "arch/x86/include/uapi/asm/mman.h"):
        (tree.path / name).write_text("changed\n")
        assert _inputs_key(tree, arch, (library,), NAMES) != key, name
        key = _inputs_key(tree, arch, (library,), NAMES)
    (library / PACKAGE_VERSION).write_text("liburing-dev:amd64 2.3-4\n")
    assert _inputs_key(tree, arch, (library,), NAMES) != key
    key = _inputs_key(tree, arch, (library,), NAMES)
    assert _inputs_key(tree, all_arches()["i386"], (library,), NAMES) != key
