"""SIGINT, SIGTERM and SIGHUP: stop the children at once, keep what finished, exit 130, 143 or 129.

make, tar and QEMU each run in a process group of their own, so a Ctrl-C at
the terminal reaches gupvm alone and a CI runner's SIGTERM does not kill
them behind gupvm's back. gupvm then ends each group whole (make's compilers
included): SIGTERM, then SIGKILL after a grace period. Its own work unwinds
as an Interrupted exception, so each stage can record that it was cut short
and the reports of what finished are still written.
"""

import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GRACE_SECONDS = 2.0  # make deletes the target it was writing when it gets SIGTERM
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # a closed terminal or ssh session sends SIGHUP


class Interrupted(BaseException):
    """Like KeyboardInterrupt, for each of SIGNALS: no `except Exception` swallows it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


_lock = threading.Lock()
_groups: set[int] = set()
_received: int | None = None
_shielded = False
_installed = False  # by the outermost handling_signals(): gitrepo's worktrees use it inside a command's


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def received() -> int | None:
    """The first of SIGNALS this run got, if any."""
    return _received


def _kill_groups(signum: int) -> None:
    with _lock:
        groups = list(_groups)
    for group in groups:
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            pass


def _handle(signum: int, _frame) -> None:
    global _received
    first = _received is None
    if first:
        _received = signum
    _kill_groups(signal.SIGTERM if first else signal.SIGKILL)
    if first and not _shielded:
        raise Interrupted(signum)


@contextmanager
def handling_signals() -> Iterator[None]:
    """SIGNALS raise Interrupted in the main thread while this lasts; elsewhere, or nested, it changes nothing."""
    global _received, _installed
    if threading.current_thread() is not threading.main_thread() or _installed:
        yield
        return
    _received = None
    previous = {signum: signal.signal(signum, _handle) for signum in SIGNALS}
    _installed = True
    try:
        yield
    finally:
        _installed = False
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def shielded() -> Iterator[None]:
    """Writing the reports: a signal now is noted (and ends the children), not raised."""
    global _shielded
    _shielded = True
    try:
        yield
    finally:
        _shielded = False


@contextmanager
def process_group(pid: int) -> Iterator[None]:
    """pid leads a process group of its own: killed with the others on a signal."""
    with _lock:
        _groups.add(pid)
    try:
        yield
    finally:
        with _lock:
            _groups.discard(pid)


def run(argv: list[str], *, capture_output: bool = False, input: str | bytes | None = None,
        timeout: float | None = None, check: bool = False, cleanup: bool = False,
        **popen_options) -> subprocess.CompletedProcess:
    """subprocess.run, in a process group of its own that is ended whole if gupvm is interrupted or the
    timeout passes: every program gupvm starts runs through here, so signals, groups and outputs are handled
    the same everywhere. cleanup: it may start after a signal (git putting the user's repository back)."""
    if _received is not None and not cleanup:  # nothing new starts once the run is stopping
        raise Interrupted(_received)
    if capture_output:
        popen_options.update(stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if input is not None:
        popen_options["stdin"] = subprocess.PIPE
    process = subprocess.Popen(argv, start_new_session=True, **popen_options)
    with process_group(process.pid):
        try:
            if _received is not None and not cleanup:  # the signal came while it started, before the group was known
                raise Interrupted(_received)
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException:
            _end_group(process)
            raise
    if check and process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, argv, stdout, stderr)
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _end_group(process: subprocess.Popen) -> None:
    """SIGTERM to the whole group, then SIGKILL to whatever of it is left after the grace period."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=GRACE_SECONDS)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
