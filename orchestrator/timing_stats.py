"""Timing statistics: did head make a metric faster, slower, or leave it the same? Pure functions.

Samples taken in one boot share that boot's state (where the kernel put its
pages, the host's load, TCG's translation cache): under real time on this
project's machine one kernel's step came out 2x apart in two boots and
steady within each. So the unit of resampling is the boot: each boot is
summed up by its median, a side by the median of its boots, and the 95 %
interval of the change comes from resampling boots (scipy's bootstrap).
With a single boot on a side, only the samples inside it can be resampled;
that interval knows nothing of how boots differ, so a clock must allow it
(instruction-counted boots agree to 0.03 %; real-time ones do not).

Several metrics are compared at once, so each interval is widened to
1 - alpha/m (Bonferroni): the chance that any of the m metrics of an A/A
comparison is called faster or slower stays below alpha.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
RESAMPLES = 4000
VERDICTS = ("slower", "faster", "same", "unknown")


@dataclass(frozen=True)
class ClockPolicy:
    """What the figures of one clock can bear."""

    material_pct: float  # a change smaller than this is not called, however sure
    min_boots: int  # boots per side before anything but unknown is said
    max_boots: int  # more boots are taken while a metric is unknown, up to this many per side


# Instruction-counted time is near deterministic: a boot is enough and half a
# percent is a real change. Real time moves between boots, so it needs several
# and calls only larger changes.
CLOCK_POLICIES = {
    "icount": ClockPolicy(material_pct=0.5, min_boots=1, max_boots=4),
    "realtime": ClockPolicy(material_pct=3.0, min_boots=3, max_boots=8),
}


@dataclass(frozen=True)
class Comparison:
    metric: str
    base_median: float
    head_median: float
    change_pct: float
    ci_low_pct: float
    ci_high_pct: float
    confidence: float  # of the interval, after the correction for the number of metrics
    base_boots: int
    head_boots: int
    base_spread_pct: float  # relative standard deviation of all samples of a side
    head_spread_pct: float
    resampled: str  # "boots", or "samples of one boot"
    verdict: str  # one of VERDICTS
    reason: str

    def slower_beyond(self, pct: float) -> bool:
        """Slower, with the whole interval beyond pct."""
        return self.verdict == "slower" and self.ci_low_pct > pct


def boot_medians(boots: Sequence[Sequence[float]]) -> np.ndarray:
    return np.array([np.median(boot) for boot in boots if len(boot)], dtype=float)


def _change(base: np.ndarray, head: np.ndarray, axis: int = -1) -> np.ndarray:
    return 100.0 * (np.median(head, axis=axis) / np.median(base, axis=axis) - 1.0)


def change_interval(
    base: Sequence[Sequence[float]], head: Sequence[Sequence[float]], confidence: float, seed: int
) -> tuple[float, float, str]:
    """The interval of the % change of the median, by boot where both sides have several."""
    if min(len(base), len(head)) >= 2:
        data, resampled = (boot_medians(base), boot_medians(head)), "boots"
    else:
        data = (np.concatenate([np.asarray(boot, float) for boot in base]),
                np.concatenate([np.asarray(boot, float) for boot in head]))
        resampled = "samples of one boot"
    if np.ptp(data[0]) == 0 and np.ptp(data[1]) == 0:  # nothing to resample: the interval is the point
        point = float(_change(*data))
        return point, point, resampled
    result = stats.bootstrap(data, _change, vectorized=True, paired=False, confidence_level=confidence,
                             n_resamples=RESAMPLES, method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high), resampled


def decide(change: float, low: float, high: float, policy: ClockPolicy) -> tuple[str, str]:
    """The verdict on one metric from its change and interval (in %), and why."""
    band = policy.material_pct
    if low > 0 and change >= band:
        return "slower", f"the interval lies above 0 and the change is at least {band:g} %"
    if high < 0 and change <= -band:
        return "faster", f"the interval lies below 0 and the change is at least {band:g} %"
    if -band <= low and high <= band:
        return "same", f"the interval lies within +-{band:g} %"
    return "unknown", f"the interval reaches past +-{band:g} % and does not exclude 0 or a change below it"


def _spread(boots: Sequence[Sequence[float]]) -> float:
    samples = np.concatenate([np.asarray(boot, float) for boot in boots])
    mean = samples.mean()
    return float(100.0 * samples.std(ddof=1) / mean) if len(samples) > 1 and mean else 0.0


def compare_metric(
    metric: str,
    base: Sequence[Sequence[float]],
    head: Sequence[Sequence[float]],
    policy: ClockPolicy,
    metrics_compared: int = 1,
    seed: int = 0,
) -> Comparison:
    """One metric: base and head are lists of boots, each a list of samples (us)."""
    base = [boot for boot in base if len(boot)]
    head = [boot for boot in head if len(boot)]
    confidence = 1.0 - ALPHA / max(metrics_compared, 1)
    if not base or not head:
        side = "base" if not base else "head"
        return Comparison(metric, float("nan"), float("nan"), float("nan"), float("nan"), float("nan"), confidence,
                          len(base), len(head), 0.0, 0.0, "", "unknown", f"no samples on {side}")
    base_median, head_median = float(np.median(boot_medians(base))), float(np.median(boot_medians(head)))
    spreads = (_spread(base), _spread(head))
    if base_median <= 0:
        return Comparison(metric, base_median, head_median, float("nan"), float("nan"), float("nan"), confidence,
                          len(base), len(head), *spreads, "", "unknown", "the base median is 0 us: no ratio")
    change = 100.0 * (head_median / base_median - 1.0)
    low, high, resampled = change_interval(base, head, confidence, seed)
    if min(len(base), len(head)) < policy.min_boots:
        verdict, reason = "unknown", f"{min(len(base), len(head))} boot(s) on a side; this clock needs " \
                                     f"{policy.min_boots} to say more"
    else:
        verdict, reason = decide(change, low, high, policy)
    return Comparison(metric, base_median, head_median, change, low, high, confidence, len(base), len(head),
                      *spreads, resampled, verdict, reason)


def compare_all(
    metrics: dict[str, tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]],
    policy: ClockPolicy,
    seed: int = 0,
) -> list[Comparison]:
    """Every metric, each interval corrected for how many are compared."""
    return [compare_metric(name, base, head, policy, len(metrics), seed) for name, (base, head) in metrics.items()]


def want_more_boots(comparisons: Sequence[Comparison], boots_per_side: int, policy: ClockPolicy) -> bool:
    """Pinpoint's rule: while a metric is unknown, take more boots, up to the clock's limit."""
    return boots_per_side < policy.max_boots and any(c.verdict == "unknown" for c in comparisons)
