"""Progress: the heartbeat's timing, the watches' reading of logs, and which display a stream gets."""

import io
import re
from pathlib import Path

import pytest

from orchestrator.progress import (
    BuildStats,
    BuildWatch,
    ConsoleWatch,
    LineReporter,
    interactive,
    last_build,
    record_build,
)

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def line_reporter(clock: Clock) -> tuple[LineReporter, io.StringIO]:
    out = io.StringIO()
    return LineReporter(out, clock=clock, timestamp=lambda: f"t{clock.now - 1000:.0f}", interval=30.0), out


def test_a_heartbeat_comes_when_nothing_was_printed_for_the_interval():
    clock = Clock()
    reporter, out = line_reporter(clock)
    with reporter.stage("debian-6.1/x86_64 build", lambda: "812 files compiled"):
        clock.now += 29.0
        reporter.tick()
        assert out.getvalue().splitlines() == ["[t0] gupvm: debian-6.1/x86_64 build: started"]
        clock.now += 1.0
        reporter.tick()
        assert out.getvalue().splitlines()[-1] == \
            "[t30] gupvm: debian-6.1/x86_64 build: running 30s, 812 files compiled"
        clock.now += 20.0
        reporter.tick()  # 20 s since the last line: not yet
        assert len(out.getvalue().splitlines()) == 2
    assert out.getvalue().splitlines()[-1] == "[t50] gupvm: debian-6.1/x86_64 build: done in 50s, 812 files compiled"


def test_a_long_stage_never_leaves_a_minute_without_a_line():
    clock = Clock()
    reporter, out = line_reporter(clock)
    with reporter.stage("debian-6.1/x86_64/matrix boot"):
        for _ in range(600):  # ten minutes, ticked every second as the reporter's thread does
            clock.now += 1.0
            reporter.tick()
    times = [int(line[2:line.index("]")]) for line in out.getvalue().splitlines()]
    assert times[0] == 0 and times[-1] == 600
    assert max(later - earlier for earlier, later in zip(times, times[1:], strict=False)) <= 60
    assert not CONTROL.search(out.getvalue().replace("\n", ""))


def test_a_failing_stage_says_so_and_the_error_goes_on():
    clock = Clock()
    reporter, out = line_reporter(clock)
    with pytest.raises(RuntimeError), reporter.stage("debian-6.1/x86_64 config"):
        clock.now += 3.0
        raise RuntimeError("boom")
    assert out.getvalue().splitlines()[-1] == "[t3] gupvm: debian-6.1/x86_64 config: failed after 3s"


def test_the_reporter_thread_beats_on_its_own():
    out = io.StringIO()
    with LineReporter(out, interval=0.5) as reporter, reporter.stage("waiting"):
        import time
        time.sleep(2.5)
    assert "waiting: running" in out.getvalue()


def test_build_watch_counts_compiled_files_against_the_last_build(tmp_path: Path):
    log = tmp_path / "build.log"
    log.write_text("# from an earlier make\n  CC      old.o\n")
    clock = Clock()
    watch = BuildWatch(log, BuildStats(files=400, seconds=200.0), clock=clock)
    assert watch.detail() == ""
    with log.open("a") as handle:
        handle.write("".join(f"  CC      mm/file{n}.o\n" for n in range(100)) + "  AS      arch/x86/entry.o\n  LD")
    clock.now += 50.0
    assert watch.detail() == "101/400 files (25% of the last build), about 2m30s left"
    assert BuildWatch(log, None).detail() == ""  # began after those lines
    assert watch.compiled() == 101


def test_build_stats_are_kept_per_config(tmp_path: Path):
    assert last_build(tmp_path, "abc") is None
    record_build(tmp_path, "abc", 1412, 150.04)
    record_build(tmp_path, "def", 0, 3.0)  # an up-to-date make is no estimate
    assert last_build(tmp_path, "abc") == BuildStats(1412, 150.0)
    assert last_build(tmp_path, "def") is None


def test_console_watch_follows_boots_and_steps(tmp_path: Path, data_dir: Path):
    captured = (data_dir / "6.1-x86_64-recovery.console.log").read_text().splitlines(keepends=True)
    console = tmp_path / "console.log"
    console.write_text("")
    watch = ConsoleWatch(console, steps=6)
    seen = []
    with console.open("a") as handle:
        for line in captured:
            handle.write(line)
            handle.flush()
            if "@@gupvm" in line or "===== gupvm boot" in line:
                seen.append(watch.detail())
    assert "booting" in seen and "step 1/6 pin_basic_before" in seen
    assert "boot 2: booting" in seen and any(detail.startswith("boot 3: step ") for detail in seen)


class FakeStream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize("tty, environ, expected", [
    (True, {"TERM": "xterm-256color"}, True),
    (True, {"TERM": "xterm", "NO_COLOR": "1"}, True),  # no colour, still live
    (True, {"TERM": "xterm", "CI": "true"}, False),
    (True, {"TERM": "dumb"}, False),
    (True, {}, False),
    (False, {"TERM": "xterm"}, False),
])
def test_live_display_only_for_a_person_at_a_terminal(tty, environ, expected):
    assert interactive(FakeStream(tty), environ) is expected


DEMO = """
import time
from orchestrator.progress import reporter_for
with reporter_for() as reporter, reporter.stage("debian-6.1/x86_64 build", lambda: "12 files compiled"):
    time.sleep(1.0)
print("closing summary")
"""


@pytest.mark.parametrize("environ, live", [({"TERM": "xterm"}, True), ({"TERM": "xterm", "CI": "true"}, False)])
def test_on_a_pty_the_status_line_is_live_unless_under_ci(environ, live):
    import os
    import sys

    import pexpect
    env = {name: value for name, value in os.environ.items() if name not in ("CI", "NO_COLOR")} | environ
    out = pexpect.run(f"{sys.executable} -c '{DEMO}'", env=env, encoding="utf-8", dimensions=(24, 120))
    assert "debian-6.1/x86_64 build" in out and out.rstrip().endswith("closing summary")
    if live:
        assert "\x1b[2K" in out and "✓" in out  # redrawn in place, then kept as a finished line
    else:
        assert not CONTROL.search(out.replace("\r\n", ""))
        assert re.search(r"\[\d\d:\d\d:\d\d\] gupvm: debian-6.1/x86_64 build: done in 1s, 12 files compiled", out)
