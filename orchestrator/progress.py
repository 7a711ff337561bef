"""Progress of long work: a live status line on a terminal, timestamped lines and a heartbeat elsewhere.

Stages say what runs (unpack, config, build, guest programs, boot); a
stage's detail comes from the log its tool writes (files compiled, the
plan step the guest has begun), read as it grows, so no stage has to
report to this module. On an interactive terminal (not under CI, not
TERM=dumb) a rich status line is redrawn in place; anywhere else each stage
gets a start and an end line with the time, and a heartbeat line follows
whenever nothing was printed for HEARTBEAT_SECONDS, so a CI job's log never
falls silent long enough to look hung. No control sequences are written
there, and rich honours NO_COLOR on the terminal.
"""

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from orchestrator.layout import Cache

HEARTBEAT_SECONDS = 30.0  # at most this long without a line in a CI log (CI systems flag a minute or more)
_COMPILED = re.compile(r"^  (CC|AS)\s+\S", re.M)  # kbuild's "  CC      mm/gup.o"
_BOOT = re.compile(r"^===== gupvm boot (\d+):", re.M)
_STEP = re.compile(r"@@gupvm step-(?:begin|skip) (\d+) (\S+)")
_READY = "@@gupvm ready"


def elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass(frozen=True)
class BuildStats:
    """The last full make of a config: how many files it compiled, in how long."""

    files: int
    seconds: float


def last_build(cache_dir: Path, config_hash: str) -> BuildStats | None:
    path = Cache(cache_dir).build_stats
    try:
        entry = json.loads(path.read_text())[config_hash]
        return BuildStats(int(entry["files"]), float(entry["seconds"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_build(cache_dir: Path, config_hash: str, files: int, seconds: float) -> None:
    """Keep the figures of a make that compiled something, for the next build's estimate."""
    if files == 0:
        return
    path = Cache(cache_dir).build_stats
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    known[config_hash] = {"files": files, "seconds": round(seconds, 1)}
    scratch = path.with_name(f"{path.name}.{os.getpid()}")
    scratch.write_text(json.dumps(known))
    scratch.replace(path)


class _GrowingFile:
    """The text appended to a file since the watch began."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def new_text(self) -> str:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:
            return ""
        cut = data.rfind(b"\n") + 1  # whole lines only
        self.offset += cut
        return data[:cut].decode(errors="replace")


class BuildWatch:
    """Files compiled so far by the make writing to log, against the last build of the same config."""

    def __init__(self, log: Path, last: BuildStats | None, clock: Callable[[], float] = time.monotonic):
        self._log = _GrowingFile(log)
        self._last = last
        self._clock = clock
        self._started = clock()
        self._compiled = 0

    def compiled(self) -> int:
        self._compiled += len(_COMPILED.findall(self._log.new_text()))
        return self._compiled

    def detail(self) -> str:
        files = self.compiled()
        if not files:
            return ""
        if self._last is None:
            return f"{files} files compiled"
        share = min(files / self._last.files, 1.0)
        left = max(self._last.seconds - (self._clock() - self._started), 0.0)
        return f"{files}/{self._last.files} files ({share:.0%} of the last build), about {elapsed(left)} left"


class ConsoleWatch:
    """Which boot and which plan step the guest is at, from the console log."""

    def __init__(self, console_log: Path, steps: int):
        self._log = _GrowingFile(console_log)
        self._steps = steps
        self._boot = 0
        self._ready = False
        self._step = ""

    def detail(self) -> str:
        text = self._log.new_text()
        if boots := _BOOT.findall(text):
            self._boot, self._ready = int(boots[-1]), False
            text = text[list(_BOOT.finditer(text))[-1].end():]
        self._ready = self._ready or _READY in text
        if steps := _STEP.findall(text):
            number, name = steps[-1]
            self._step = f"step {number}/{self._steps} {name}"
        if not self._boot:
            return ""
        where = f"boot {self._boot}: " if self._boot > 1 else ""
        if not self._ready:
            return where + "booting"
        return where + (self._step or "ready")


class Stage:
    """A stage in progress; result, if set, replaces the watch's detail on the end line (e.g. 'cached')."""

    def __init__(self, name: str, detail: Callable[[], str] | None, started: float):
        self.name = name
        self.detail = detail or (lambda: "")
        self.started = started
        self.result = ""


class LineReporter:
    """Timestamped lines; a heartbeat when nothing was printed for `interval` seconds."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic,
                 timestamp: Callable[[], str] = lambda: time.strftime("%H:%M:%S"),
                 interval: float = HEARTBEAT_SECONDS):
        self._stream, self._clock, self._timestamp, self._interval = stream, clock, timestamp, interval
        self._lock = threading.Lock()
        self._stages: list[Stage] = []
        self._last_line = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "LineReporter":
        self._thread = threading.Thread(target=self._beat, name="gupvm-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def _print(self, text: str) -> None:
        with self._lock:
            self._stream.write(f"[{self._timestamp()}] gupvm: {text}\n")
            self._stream.flush()
            self._last_line = self._clock()

    def tick(self) -> None:
        """A heartbeat line if one is due: what is running, for how long, and how far it got."""
        now = self._clock()
        if now - self._last_line < self._interval:
            return
        if not self._stages:
            self._print("working")
            return
        stage = self._stages[-1]
        detail = stage.detail()
        self._print(f"{stage.name}: running {elapsed(now - stage.started)}" + (f", {detail}" if detail else ""))

    @contextmanager
    def stage(self, name: str, detail: Callable[[], str] | None = None) -> Iterator[Stage]:
        stage = Stage(name, detail, self._clock())
        self._stages.append(stage)
        self._print(f"{name}: started")
        try:
            yield stage
        except BaseException:
            self._print(f"{name}: failed after {elapsed(self._clock() - stage.started)}")
            raise
        finally:
            self._stages.remove(stage)
        result = stage.result or stage.detail()
        self._print(f"{name}: done in {elapsed(self._clock() - stage.started)}" + (f", {result}" if result else ""))

    def note(self, line: str) -> None:
        self._print(line)


class LiveReporter:
    """A status line redrawn in place (rich), with a line kept for each finished stage."""

    def __init__(self, stream: TextIO):
        self._console = Console(file=stream)
        self._stages: list[Stage] = []
        self._spinner = Spinner("dots")
        self._live = Live(console=self._console, get_renderable=self._render, refresh_per_second=4,
                          transient=True, redirect_stdout=False, redirect_stderr=False)

    def __enter__(self) -> "LiveReporter":
        self._live.start()
        return self

    def __exit__(self, *exc) -> None:
        self._live.stop()

    def _render(self) -> Spinner | Text:
        if not self._stages:
            return Text("")
        stage = self._stages[-1]
        detail = stage.detail()
        self._spinner.update(text=f"[bold]{stage.name}[/bold]  {elapsed(time.monotonic() - stage.started)}"
                                  + (f"  {detail}" if detail else ""))
        return self._spinner

    @contextmanager
    def stage(self, name: str, detail: Callable[[], str] | None = None) -> Iterator[Stage]:
        stage = Stage(name, detail, time.monotonic())
        self._stages.append(stage)
        try:
            yield stage
        except BaseException:
            self._console.print(f"[red]✗[/red] {name}: failed after {elapsed(time.monotonic() - stage.started)}",
                                highlight=False)
            raise
        finally:
            self._stages.remove(stage)
            self._live.refresh()  # the status line now shows what still runs, before the stage's end line
        result = stage.result or stage.detail()
        self._console.print(f"[green]✓[/green] {name}: done in {elapsed(time.monotonic() - stage.started)}"
                            + (f", {result}" if result else ""), highlight=False)

    def note(self, line: str) -> None:
        self._console.print(line, highlight=False, markup=False)


Reporter = LineReporter | LiveReporter


def interactive(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """A person watching a terminal, not a CI log (CI sets CI=true even where it gives a pty)."""
    return stream.isatty() and not environ.get("CI") and environ.get("TERM", "") not in ("", "dumb", "unknown")


def reporter_for(stream: TextIO | None = None, environ: Mapping[str, str] = os.environ) -> Reporter:
    """A reporter on stream, by default the standard output of the moment (not of the import: a test's
    capture, or mutmut's, replaces it)."""
    stream = stream or sys.stdout
    return LiveReporter(stream) if interactive(stream, environ) else LineReporter(stream)
