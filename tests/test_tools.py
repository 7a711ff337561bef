from orchestrator.tools import first_error_lines


def test_a_tools_complaint_before_make_gives_up(data_dir):
    log = (data_dir / "6.1-x86_64-bad-initramfs.build.log").read_text()
    lines = first_error_lines(log)
    assert lines[0].strip().endswith("gen_initramfs.sh: Cannot open '/nonexistent/initramfs'")
    assert lines[1].startswith("make[3]: *** ") and len(lines) == 2


def test_a_real_compiler_error(data_dir):
    log = (data_dir / "6.1-x86_64-compile-error.build.log").read_text(encoding="utf-8")
    assert first_error_lines(log) == ["/tmp/broken-linux/mm/gup_test.c:113:9: error: expected ‘;’ before ‘pages’"]


def test_compiler_errors_come_first():
    log = "  CC      mm/gup.o\nmm/gup.c:10:5: error: expected ';' before '}' token\nmake[3]: *** [x] Error 1\n"
    assert first_error_lines(log) == ["mm/gup.c:10:5: error: expected ';' before '}' token"]


def test_nothing_found_in_a_clean_log():
    assert first_error_lines("  CC      mm/gup.o\n  LD      vmlinux\n") == []
