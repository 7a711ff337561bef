"""The timing statistics on synthetic samples with a fixed seed: A/A, shifted, and boot-to-boot drift."""

import numpy as np
import pytest

from orchestrator.timing_stats import CLOCK_POLICIES, ClockPolicy, compare_all, compare_metric, decide, want_more_boots

REALTIME, ICOUNT = CLOCK_POLICIES["realtime"], CLOCK_POLICIES["icount"]
METRICS = [f"x86_64/{step}/{m}" for step in ("gup_fast", "pin_fast", "pin_longterm") for m in ("get", "put")]


def boots(rng, median: float, count: int, samples: int = 10, boot_sd: float = 0.02, sample_sd: float = 0.01):
    """count boots around median: each boot drifts by boot_sd, its samples scatter by sample_sd (relative)."""
    return [list(median * (1 + rng.normal(0, boot_sd)) * (1 + rng.normal(0, sample_sd, samples)))
            for _ in range(count)]


def side_pair(rng, factor: float, count: int, **kwargs):
    return {name: (boots(rng, 20000, count, **kwargs), boots(rng, 20000 * factor, count, **kwargs))
            for name in METRICS}


@pytest.mark.parametrize("change, low, high, verdict", [
    (10.0, 5.0, 15.0, "slower"),
    (-10.0, -15.0, -5.0, "faster"),
    (0.1, -1.0, 1.5, "same"),
    (0.4, 0.1, 0.8, "same"),  # real but below the band
    (2.0, -1.0, 5.0, "unknown"),  # could be nothing, could be material
    (2.5, 0.5, 4.0, "unknown"),  # sure of a change, not sure it reaches the band ...
    (3.5, 0.5, 6.0, "slower"),  # ... until its median does
])
def test_verdict_table(change, low, high, verdict):
    assert decide(change, low, high, ClockPolicy(material_pct=3.0, min_boots=1, max_boots=4))[0] == verdict


def test_a_a_calls_at_most_one_metric_in_twenty():
    rng = np.random.default_rng(11)
    verdicts = [c.verdict for trial in range(30)
                for c in compare_all(side_pair(rng, 1.0, 4, boot_sd=0.01), REALTIME, seed=trial)]
    called = sum(v in ("slower", "faster") for v in verdicts)
    assert called <= len(verdicts) / 20, called
    assert verdicts.count("same") > len(verdicts) / 2  # and mostly says so, rather than unknown


def test_ten_percent_slower_is_called_in_nine_of_ten_trials():
    rng = np.random.default_rng(12)
    called = [all(c.verdict == "slower" for c in compare_all(side_pair(rng, 1.10, 4), REALTIME, seed=trial))
              for trial in range(10)]
    assert sum(called) >= 9


def test_fail_on_slower_needs_the_whole_interval_beyond_it():
    base = [[100.0, 100.5], [99.5, 100.0], [100.0, 100.2], [100.3, 99.8]]
    head = [[106.0, 106.5], [105.5, 106.0], [107.0, 107.2], [106.3, 106.8]]
    one = compare_metric("m", base, head, REALTIME)
    assert one.verdict == "slower" and 5 < one.ci_low_pct < 6.5 < one.ci_high_pct < 8
    assert one.slower_beyond(5) and not one.slower_beyond(6.5)


def test_icount_calls_two_percent_every_time_from_one_boot_each():
    rng = np.random.default_rng(13)
    for trial in range(10):
        pairs = side_pair(rng, 1.02, 1, boot_sd=0.0003, sample_sd=0.0002)
        comparisons = compare_all(pairs, ICOUNT, seed=trial)
        assert all(c.verdict == "slower" and c.resampled == "samples of one boot" for c in comparisons)
        assert all(1.8 < c.ci_low_pct <= c.change_pct <= c.ci_high_pct < 2.2 for c in comparisons)
        same = compare_all(side_pair(rng, 1.0, 1, boot_sd=0.0003, sample_sd=0.0002), ICOUNT, seed=trial)
        assert all(c.verdict == "same" for c in same)


def test_boots_not_samples_are_resampled():
    """Each boot steady, boots 2x apart (real time under TCG): many samples do not make it sure."""
    base = [[20000.0 + i for i in range(10)], [40000.0 + i for i in range(10)], [21000.0 + i for i in range(10)]]
    head = [[41000.0 + i for i in range(10)], [22000.0 + i for i in range(10)], [40500.0 + i for i in range(10)]]
    comparison = compare_metric("m", base, head, REALTIME)
    assert comparison.resampled == "boots"
    assert comparison.ci_low_pct < 0 < comparison.ci_high_pct and comparison.verdict == "unknown"


def test_the_interval_widens_with_the_number_of_metrics():
    rng = np.random.default_rng(14)
    base, head = boots(rng, 20000, 5), boots(rng, 20600, 5)
    alone = compare_metric("m", base, head, REALTIME, metrics_compared=1)
    among_six = compare_metric("m", base, head, REALTIME, metrics_compared=6)
    assert among_six.confidence == pytest.approx(1 - 0.05 / 6)
    assert among_six.ci_high_pct - among_six.ci_low_pct > alone.ci_high_pct - alone.ci_low_pct


def test_too_few_boots_or_no_samples_say_unknown_and_why():
    one_boot = compare_metric("m", [[100.0] * 10], [[200.0] * 10], REALTIME)
    assert one_boot.verdict == "unknown" and "needs 3" in one_boot.reason and one_boot.change_pct == 100.0
    missing = compare_metric("m", [[100.0]], [], REALTIME)
    assert missing.verdict == "unknown" and missing.reason == "no samples on head"
    zero = compare_metric("m", [[0.0, 0.0]], [[1.0, 1.0]], ICOUNT)
    assert zero.verdict == "unknown" and "0 us" in zero.reason


def test_more_boots_while_unknown_up_to_the_limit():
    unknown = compare_metric("m", [[100.0] * 10], [[200.0] * 10], REALTIME)
    same = compare_metric("m", [[100.0, 101.0]] * 3, [[100.0, 101.0]] * 3, REALTIME)
    assert same.verdict == "same"
    assert want_more_boots([same, unknown], 3, REALTIME)
    assert not want_more_boots([same, unknown], REALTIME.max_boots, REALTIME)
    assert not want_more_boots([same], 3, REALTIME)
