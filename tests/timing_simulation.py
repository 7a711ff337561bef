"""A/A trials of the timing statistics on simulated boots: how often a comparison of one kernel with itself
calls a metric slower or faster. Shared by the unit test that bounds it and the benchmark that prints it.

A boot's samples share that boot's state, so each boot draws its own level (log-normal, boot_sd) and its
samples scatter around it (sample_sd); the figures are what this project measured on its machine under TCG:
instruction-counted boots agree to 0.03 %, real-time ones move up to 2x.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np

from orchestrator.timing_stats import CLOCK_POLICIES, compare_all

METRICS = [f"x86_64/{step}/{m}" for step in ("gup_fast", "pin_fast", "pin_longterm") for m in ("get", "put")]
SAMPLES_PER_BOOT = 10


@dataclass(frozen=True)
class ClockModel:
    boot_sd: float  # of a boot's level, relative (log scale)
    sample_sd: float  # of a sample within its boot, relative


CLOCK_MODELS = {"icount": ClockModel(boot_sd=0.0003, sample_sd=0.0002),
                "realtime": ClockModel(boot_sd=0.25, sample_sd=0.02)}


def boots(rng: np.random.Generator, median: float, count: int, model: ClockModel) -> list[list[float]]:
    return [list(median * np.exp(rng.normal(0, model.boot_sd)) * (1 + rng.normal(0, model.sample_sd,
                                                                                   SAMPLES_PER_BOOT)))
            for _ in range(count)]


def aa_trials(clock: str, boots_per_side: int, trials: int, seed: int, material_pct: float = 0.0) -> int:
    """Trials (of `trials`) in which an A/A comparison called any of the six metrics slower or faster, with
    the clock's materiality floor set to material_pct (0: the interval alone decides)."""
    rng = np.random.default_rng(seed)
    model = CLOCK_MODELS[clock]
    policy = dataclasses.replace(CLOCK_POLICIES[clock], material_pct=material_pct, min_boots=1)
    called = 0
    for _ in range(trials):
        pairs = {name: (boots(rng, 20000, boots_per_side, model), boots(rng, 20000, boots_per_side, model))
                 for name in METRICS}
        comparisons = compare_all(pairs, policy)
        called += any(comparison.verdict in ("slower", "faster") for comparison in comparisons)
    return called
