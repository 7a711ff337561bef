#!/usr/bin/env python3
"""How often an A/A comparison (one kernel against itself) calls a metric slower or faster.

timing_stats promises: less than 5 % of A/A comparisons call any of the
metrics compared, and the interval alone keeps that promise, without the
clock's materiality floor. For each clock and number of boots per side that
presubmit may take, this runs seeded A/A trials of six metrics on simulated
boots (tests/timing_simulation.py: each boot draws its own level, as
instruction-counted and real-time boots do on this machine) and prints the
share of trials that called any metric, with the floor at 0 (and its 95 %
Clopper-Pearson interval, since a few hundred trials measure 5 % only to
about +-3 %) and at the clock's own, then the floor-0 share over all cells.
No kernels; about two minutes at the default 1000 trials a cell.
  .venv/bin/python benchmarks/aa_coverage.py [--trials N]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from scipy import stats  # noqa: E402
from timing_simulation import CLOCK_MODELS, aa_trials  # noqa: E402

from orchestrator.timing_stats import CLOCK_POLICIES, MIN_BOOTS  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000, help="A/A trials per clock and boots per side")
    trials = parser.parse_args().trials
    print(f"{'clock':<9} {'boots/side':>10} {'floor 0 [95 % interval]':>30} {'clock floor':>16}"
          f"   (A/A trials calling any of 6 metrics)")
    total = 0
    cells = 0
    for clock, policy in CLOCK_POLICIES.items():
        for boots in range(max(MIN_BOOTS, policy.min_boots), policy.max_boots + 1):
            bare = aa_trials(clock, boots, trials, seed=boots)
            floored = aa_trials(clock, boots, trials, seed=boots, material_pct=policy.material_pct)
            interval = stats.binomtest(bare, trials).proportion_ci()
            total, cells = total + bare, cells + 1
            print(f"{clock:<9} {boots:>10} {bare:>5} ({bare / trials:5.1%}) [{interval.low:5.1%}, {interval.high:5.1%}]"
                  f" {floored:>7} ({floored / trials:5.1%})", flush=True)
    print(f"all cells, floor 0: {total} of {trials * cells} ({total / (trials * cells):.2%}); target: at most 5 %; "
          "boot spread " + ", ".join(f"{clock} {model.boot_sd:.2%}" for clock, model in CLOCK_MODELS.items()))


if __name__ == "__main__":
    main()
