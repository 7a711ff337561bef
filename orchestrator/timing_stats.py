"""Timing statistics: did head make a metric faster, slower, or leave it the same? Pure functions.

Samples taken in one boot share that boot's state (where the kernel put its
pages, the host's load, TCG's translation cache): under real time on this
project's machine one kernel's step came out 2x apart in two boots and
steady within each. So the unit of the statistics is the boot: each boot is
summed up by its median, and the change of head over base is the ratio of
the two sides' geometric means of boot medians. Its interval is Welch's t
interval on the logarithms of the boot medians (scipy's ttest_ind), a
studentized interval whose coverage holds with as few as two boots a side
where a bootstrap over three boots is far too narrow (an A/A comparison
called a metric in 45 % of trials with 3 real-time boots a side, and in 97 %
with the samples of one instruction-counted boot). A side needs two boots
before anything but unknown is said, whatever the clock.

Several metrics are compared at once, so each interval is widened to
1 - alpha/m (Bonferroni): the chance that any of the m metrics of an A/A
comparison is called faster or slower stays below alpha, with or without
the clock's materiality floor (benchmarks/aa_coverage.py shows it).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
VERDICTS = ("slower", "faster", "same", "unknown")
METHOD = "Student t over boots"
MIN_BOOTS = 2  # a side's boots, to know how boots vary at all


@dataclass(frozen=True)
class ClockPolicy:
    """What the figures of one clock can bear."""

    material_pct: float  # a change smaller than this is not called, however sure
    min_boots: int  # boots per side before anything but unknown is said (at least MIN_BOOTS)
    max_boots: int  # more boots are taken while a metric is unknown, up to this many per side


# Instruction-counted time is near deterministic: two boots are enough and half
# a percent is a real change. Real time moves between boots, so it needs
# several and calls only larger changes.
CLOCK_POLICIES = {
    "icount": ClockPolicy(material_pct=0.5, min_boots=2, max_boots=4),
    "realtime": ClockPolicy(material_pct=3.0, min_boots=3, max_boots=8),
}


@dataclass(frozen=True)
class Comparison:
    metric: str
    base_median: float  # the geometric mean of the side's boot medians
    head_median: float
    change_pct: float
    ci_low_pct: float
    ci_high_pct: float
    confidence: float  # of the interval, after the correction for the number of metrics
    base_boots: int
    head_boots: int
    base_spread_pct: float  # relative standard deviation of all samples of a side
    head_spread_pct: float
    method: str  # how the interval was made (METHOD), or "" where none was
    verdict: str  # one of VERDICTS
    reason: str

    def slower_beyond(self, pct: float) -> bool:
        """Slower, with the whole interval beyond pct."""
        return self.verdict == "slower" and self.ci_low_pct > pct


def boot_medians(boots: Sequence[Sequence[float]]) -> np.ndarray:
    return np.array([np.median(boot) for boot in boots if len(boot)], dtype=float)


def change_interval(base: Sequence[Sequence[float]], head: Sequence[Sequence[float]],
                    confidence: float) -> tuple[float, float, float]:
    """The % change of head over base and its interval, from two or more boots a side with medians above 0."""
    base_logs, head_logs = np.log(boot_medians(base)), np.log(boot_medians(head))
    # Centred on base: boots that agree to 0.03 % would lose their spread to cancellation far from 0.
    centre = np.mean(base_logs)
    base_logs, head_logs = base_logs - centre, head_logs - centre
    change = float(np.mean(head_logs) - np.mean(base_logs))
    if np.ptp(base_logs) == 0 and np.ptp(head_logs) == 0:  # no spread at all: the interval is the point
        low = high = change
    else:
        interval = stats.ttest_ind(head_logs, base_logs, equal_var=True).confidence_interval(confidence)
        low, high = float(interval.low), float(interval.high)
    return tuple(float(100.0 * np.expm1(value)) for value in (change, low, high))


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


def _geometric_mean(boots: Sequence[Sequence[float]]) -> float:
    medians = boot_medians(boots)
    return float(np.exp(np.mean(np.log(medians)))) if np.all(medians > 0) else float(np.median(medians))


def compare_metric(
    metric: str,
    base: Sequence[Sequence[float]],
    head: Sequence[Sequence[float]],
    policy: ClockPolicy,
    metrics_compared: int = 1,
) -> Comparison:
    """One metric: base and head are lists of boots, each a list of samples (us)."""
    base = [boot for boot in base if len(boot)]
    head = [boot for boot in head if len(boot)]
    confidence = 1.0 - ALPHA / max(metrics_compared, 1)
    nan = float("nan")
    if not base or not head:
        side = "base" if not base else "head"
        return Comparison(metric, nan, nan, nan, nan, nan, confidence, len(base), len(head), 0.0, 0.0, "", "unknown",
                          f"no samples on {side}")
    base_median, head_median = _geometric_mean(base), _geometric_mean(head)
    spreads = (_spread(base), _spread(head))

    def unknown(change: float, reason: str, method: str = "") -> Comparison:
        return Comparison(metric, base_median, head_median, change, nan, nan, confidence, len(base), len(head),
                          *spreads, method, "unknown", reason)

    if np.any(boot_medians(base) <= 0) or np.any(boot_medians(head) <= 0):
        return unknown(nan, "a boot's median is 0 us: no ratio")
    boots = min(len(base), len(head))
    if boots < max(MIN_BOOTS, policy.min_boots):
        return unknown(100.0 * (head_median / base_median - 1.0),
                       f"{boots} boot(s) on a side; this clock needs {max(MIN_BOOTS, policy.min_boots)} to say more")
    change, low, high = change_interval(base, head, confidence)
    verdict, reason = decide(change, low, high, policy)
    return Comparison(metric, base_median, head_median, change, low, high, confidence, len(base), len(head),
                      *spreads, METHOD, verdict, reason)


def compare_all(
    metrics: dict[str, tuple[Sequence[Sequence[float]], Sequence[Sequence[float]]]],
    policy: ClockPolicy,
) -> list[Comparison]:
    """Every metric, each interval corrected for how many are compared."""
    return [compare_metric(name, base, head, policy, len(metrics)) for name, (base, head) in metrics.items()]


def want_more_boots(comparisons: Sequence[Comparison], boots_per_side: int, policy: ClockPolicy) -> bool:
    """Pinpoint's rule: while a metric is unknown, take more boots, up to the clock's limit."""
    return boots_per_side < policy.max_boots and any(c.verdict == "unknown" for c in comparisons)
