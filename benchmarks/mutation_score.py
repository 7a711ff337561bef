#!/usr/bin/env python3
"""Mutation testing of the modules that decide: does every decision have a test that fails when it flips?

Runs mutmut (configured in pyproject.toml, [tool.mutmut]) on the named
modules (default: every module of [tool.mutmut] only_mutate), then prints,
per module, the mutants killed by the unit tests, those that survived, and
those listed as equivalent in tests/mutation-equivalents.toml (a mutant no
test can kill because it changes nothing a user sees, with the reason), and
the score: killed / (all - equivalent). Exits 1 when a survivor is not
listed. mutmut keeps its results in mutants/, so a second run retests only
what changed. A whole run takes hours on 2 cores; name modules to run part:
  .venv/bin/pip install -e '.[test,mutation]'
  .venv/bin/python benchmarks/mutation_score.py [MODULE ...]   e.g. exit_codes step_compare
"""

import argparse
import re
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = Path(sys.executable).parent / "mutmut"
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.toml"
_RESULT = re.compile(r"^\s+(orchestrator\.(\w+)\.\S+): (.+)$")


def decision_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return [Path(path).stem for path in config["only_mutate"]]


def results() -> dict[str, tuple[str, str]]:
    """mutant -> (module, status), for every mutant mutmut has a result for."""
    listing = subprocess.run([str(MUTMUT), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    return {match.group(1): (match.group(2), match.group(3).strip()) for line in listing.splitlines()
            if (match := _RESULT.match(line))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules of orchestrator/ (default: every deciding module)")
    parser.add_argument("--report-only", action="store_true", help="print the results of earlier runs, run nothing")
    chosen = parser.parse_args()
    modules = chosen.modules or decision_modules()
    if not chosen.report_only:
        subprocess.run([str(MUTMUT), "run", *(f"orchestrator.{module}.*" for module in modules)], cwd=ROOT)
    equivalent = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", {}) if EQUIVALENTS.is_file() else {}
    found = {name: entry for name, entry in results().items() if entry[0] in modules}
    unexplained = []
    print(f"{'module':<16} {'mutants':>7} {'killed':>7} {'survived':>9} {'equivalent':>11} {'other':>6} {'score':>7}")
    for module in modules:
        statuses = Counter()
        for name, (_, status) in found.items():
            if found[name][0] != module:
                continue
            if status == "survived" and name in equivalent:
                statuses["equivalent"] += 1
            elif status in ("killed", "survived"):
                statuses[status] += 1
                if status == "survived":
                    unexplained.append(name)
            else:
                statuses["other"] += 1  # timeout, no tests, suspicious, not checked yet
        total = sum(statuses.values())
        judged = total - statuses["equivalent"] - statuses["other"]
        score = f"{statuses['killed'] / judged:.1%}" if judged else "-"
        print(f"{module:<16} {total:>7} {statuses['killed']:>7} {statuses['survived']:>9} "
              f"{statuses['equivalent']:>11} {statuses['other']:>6} {score:>7}")
    for name in unexplained:
        print(f"survived, not listed as equivalent: {name}  (mutmut show {name})")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
