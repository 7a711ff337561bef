#!/usr/bin/env python3
"""Time `gupvm bisect` on a 32-commit synthetic history of Debian's 6.1 tree.

The history (tests/git_history.py): 32 small commits over mm/ and elsewhere;
commit 23 makes gup_test.c unpin one page too few, commit 8 does not
compile. The bisection runs twice on it: the first warms the build
directory of the bisection's worktree (its path is stable, so its objects
and ccache entries serve the second); the second is the one measured, with
the good end's kernel in the cache and every other kept kernel of the
history forgotten before each round, so each of its commits is built
(incrementally) as a user's bisection builds it. Only pin_basic runs (x86_64, smoke).

Prints the number of tested commits and, for each, its seconds with build
and boot apart (wall clock of this machine: the guest runs under whatever
accelerator gupvm chose), then the whole bisection's seconds.
Targets (2 cores, TCG): a step whose commits differ only in mm/ <= 60 s;
the whole bisection, good end cached, <= 600 s.

Usage: bisect_times.py [--once]   (--once: measure the first, cold, bisection only)
Run it under the shared build lock on a shared machine.
"""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from git_history import make_kernel_history  # noqa: E402

from orchestrator import (
    layout,  # noqa: E402
    source,  # noqa: E402
)
from orchestrator.layout import Cache  # noqa: E402
from orchestrator.paths import default_cache_dir  # noqa: E402


def bisect(history, workdir: Path) -> tuple[float, dict, str]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "bisect", "--kernel-src", str(history.path), "--good",
         history.commits[0], "--bad", history.commits[-1], "--step", "pin_basic"],
        cwd=workdir, capture_output=True, text=True)
    seconds = time.monotonic() - started
    state_path = next((workdir / "out").glob(f"*/{layout.BISECT_STATE}"))
    return seconds, json.loads(state_path.read_text()), result.stdout + result.stderr


def forget_kernels(history, since: float) -> int:
    """Remove the finished kernels kept of the history's commits but its good end, and all kept since."""
    commits = {source.commit_fingerprint(history.path, commit) for commit in history.commits[1:]}
    good = source.commit_fingerprint(history.path, history.commits[0])
    cache = Cache(default_cache_dir())
    kept_since = {entry for entry in cache.kept_kernels("x86_64") if entry.stat().st_mtime > since}
    of_history = {entry for fingerprint in commits - {good} for entry in cache.kept_kernels("x86_64", fingerprint)}
    forgotten = (kept_since | of_history) - set(cache.kept_kernels("x86_64", good))
    for entry in forgotten:
        shutil.rmtree(entry)
    return len(forgotten)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gupvm-bisect-bench-") as scratch:
        root = Path(scratch)
        started = time.monotonic()
        history = make_kernel_history(root / "linux", changes=32, breaking_at=23, unbuildable_at=8)
        print(f"history: {len(history.commits)} commits in {time.monotonic() - started:.0f} s")
        rounds = ("cold",) if "--once" in sys.argv[1:] else ("warm-up", "measured")
        round_started = time.time()
        for name in rounds:
            # Each round builds what a user's bisection builds: every commit but the good end (a kernel
            # of an earlier round, or of an earlier run of this benchmark, would be taken from the cache).
            print(f"\n{name}: forgot {forget_kernels(history, round_started)} kept kernels; the good end's stays")
            round_started = time.time()
            workdir = root / name
            workdir.mkdir()
            seconds, state, output = bisect(history, workdir)
            conclusion = state.get("conclusion") or {}
            print(f"\n{name}: {len(state['records'])} tested commits, {seconds:.0f} s in all; "
                  f"verdict {conclusion.get('outcome')} "
                  f"({'right' if conclusion.get('culprit') == history.breaking else 'WRONG'} culprit)")
            print(f"  {'role':<20} {'commit':<12} {'verdict':<7} {'build s':>8} {'boot s':>7} {'step s':>7}")
            for record in state["records"]:
                print(f"  {record['role']:<20} {record['commit'][:12]:<12} {record['verdict']:<7} "
                      f"{record['build_seconds']:>8.1f} {record['boot_seconds']:>7.1f} {record['seconds']:>7.1f}")
            if not conclusion:
                print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
