import json
from pathlib import Path

from orchestrator import build
from orchestrator.arches import all_arches
from orchestrator.config import FinalConfig
from orchestrator.layout import Cache
from orchestrator.source import KernelSource

X86_64 = all_arches()["x86_64"]


def test_an_up_to_date_build_runs_no_make_and_still_leaves_its_log(tmp_path: Path, monkeypatch):
    source = KernelSource(tmp_path / "src", "tree:x", "f00d", "tree-1", "6.1.0")
    final = FinalConfig("CONFIG_GUP_TEST=y\n")
    build_dir = tmp_path / "build"
    (build_dir / "arch/x86/boot").mkdir(parents=True)
    (build_dir / "arch/x86/boot/bzImage").write_bytes(b"kernel")
    (build_dir / "include/config").mkdir(parents=True)
    (build_dir / "include/config/kernel.release").write_text("6.1.0\n")
    (build_dir / build.STAMP_NAME).write_text(json.dumps({"source": "f00d", "config": final.hash}))
    (build_dir / build.LAST_LOG_NAME).write_text("  CC      mm/gup.o\n")
    monkeypatch.setattr(build, "run_logged", lambda *args, **kwargs: (_ for _ in ()).throw(AssertionError("make")))
    log = tmp_path / "run/build-x86_64.log"
    kernel = build.build_kernel(source, X86_64, final, build_dir, 2, log)
    assert not kernel.rebuilt and kernel.release == "6.1.0"
    assert log.read_text().splitlines()[1] == "  CC      mm/gup.o"


def test_a_changed_config_or_source_rebuilds(tmp_path: Path, monkeypatch):
    source = KernelSource(tmp_path / "src", "tree:x", "beef", "tree-1", "6.1.0")
    build_dir = tmp_path / "build"
    (build_dir / "include/config").mkdir(parents=True)
    (build_dir / "include/config/kernel.release").write_text("6.1.0\n")
    (build_dir / build.STAMP_NAME).write_text(json.dumps({"source": "f00d", "config": "x"}))
    made = []

    def fake_make(argv, *, what, log, **kwargs):
        made.append(argv)
        (build_dir / "arch/x86/boot").mkdir(parents=True, exist_ok=True)
        (build_dir / "arch/x86/boot/bzImage").write_bytes(b"kernel")
        log.write_text("  LD      vmlinux\n")

    monkeypatch.setattr(build, "run_logged", fake_make)
    kernel = build.build_kernel(source, X86_64, FinalConfig("CONFIG_A=y\n"), build_dir, 2, tmp_path / "b.log")
    assert kernel.rebuilt and made and made[0][-2:] == ["-j2", "bzImage"]
    assert (build_dir / ".config").read_text() == "CONFIG_A=y\n"
    assert json.loads((build_dir / build.STAMP_NAME).read_text()) == {"source": "beef", "config": kernel_hash()}
    assert (build_dir / build.LAST_LOG_NAME).read_text() == "  LD      vmlinux\n"


def kernel_hash() -> str:
    return FinalConfig("CONFIG_A=y\n").hash


def test_a_kept_kernel_is_never_built_again(tmp_path: Path, monkeypatch):
    """Built once for (source, config), then found in the store though the build directory moved on."""
    source = KernelSource(tmp_path / "src", "tree:x", "base1", "tree-1", "6.1.0")
    final = FinalConfig("CONFIG_GUP_TEST=y\n")
    build_dir, store = tmp_path / "build", Cache(tmp_path)
    made = []

    def fake_make(argv, *, what, log, **kwargs):
        fingerprint = json.loads((build_dir / "fingerprint").read_text())
        made.append(fingerprint)
        (build_dir / "arch/x86/boot").mkdir(parents=True, exist_ok=True)
        (build_dir / "arch/x86/boot/bzImage").write_bytes(b"kernel " + fingerprint.encode())
        (build_dir / "include/config").mkdir(parents=True, exist_ok=True)
        (build_dir / "include/config/kernel.release").write_text("6.1.0-gupvm\n")
        log.write_text("  LD      vmlinux\n")

    monkeypatch.setattr(build, "run_logged", fake_make)
    real_install = build.install_config

    def install_config(final, build_dir):  # what the fake make builds: the tree state it was given
        real_install(final, build_dir)
        (build_dir / "fingerprint").write_text(json.dumps(building[0]))

    monkeypatch.setattr(build, "install_config", install_config)
    building = ["base1"]
    first = build.build_kernel(source, X86_64, final, build_dir, 2, tmp_path / "1.log", store)
    assert first.rebuilt and made == ["base1"]
    head = KernelSource(tmp_path / "src", "tree:y", "head1", "tree-1", "6.1.0")
    building[0] = "head1"
    build.build_kernel(head, X86_64, final, build_dir, 2, tmp_path / "2.log", store)  # the build dir moves on
    building[0] = "base1"
    again = build.build_kernel(source, X86_64, final, build_dir, 2, tmp_path / "3.log", store)
    assert made == ["base1", "head1"] and not again.rebuilt
    assert again.image.read_bytes() == b"kernel base1" and again.release == "6.1.0-gupvm"
    assert "make not run" in (tmp_path / "3.log").read_text()
    other_config = build.build_kernel(source, X86_64, FinalConfig("CONFIG_X=y\n"), build_dir, 2, tmp_path / "4.log",
                                      store)
    assert other_config.rebuilt and made[-1] == "base1"
