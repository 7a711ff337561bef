"""The timing statistics on synthetic samples with a fixed seed: A/A, shifted, and boot-to-boot drift."""

import numpy as np
import pytest
from timing_simulation import aa_trials

from orchestrator.timing_stats import (
    CLOCK_POLICIES,
    METHOD,
    ClockPolicy,
    compare_all,
    compare_metric,
    decide,
    want_more_boots,
)

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


CELLS = [("icount", n) for n in range(2, ICOUNT.max_boots + 1)] + \
    [("realtime", n) for n in range(REALTIME.min_boots, REALTIME.max_boots + 1)]


@pytest.fixture(scope="module")
def aa_called() -> dict[tuple[str, int], int]:
    """The interval alone keeps the promise: 200 seeded A/A trials of six metrics per cell, the floor at 0."""
    return {(clock, boots): aa_trials(clock, boots, trials=200, seed=boots) for clock, boots in CELLS}


@pytest.mark.parametrize("clock, boots_per_side", CELLS)
def test_a_a_calls_a_metric_in_about_one_trial_in_twenty_without_the_materiality_floor(aa_called, clock,
                                                                                      boots_per_side):
    assert aa_called[clock, boots_per_side] <= 16, f"{aa_called[clock, boots_per_side]} of 200 A/A trials called"


def test_a_a_over_every_clock_and_number_of_boots_stays_below_alpha(aa_called):
    assert sum(aa_called.values()) <= 0.06 * 200 * len(CELLS)


def test_a_a_says_same_once_the_boots_can_bear_it():
    rng = np.random.default_rng(11)
    verdicts = [c.verdict for _ in range(30)
                for c in compare_all(side_pair(rng, 1.0, REALTIME.max_boots, boot_sd=0.01), REALTIME)]
    assert sum(v in ("slower", "faster") for v in verdicts) <= len(verdicts) / 20
    assert verdicts.count("same") > len(verdicts) / 2


def test_ten_percent_slower_is_called_in_nine_of_ten_trials_by_the_clocks_last_boot():
    rng = np.random.default_rng(12)
    called = [all(c.verdict == "slower" for c in compare_all(side_pair(rng, 1.10, REALTIME.max_boots), REALTIME))
              for trial in range(10)]
    assert sum(called) >= 9


def test_fail_on_slower_needs_the_whole_interval_beyond_it():
    base = [[100.0, 100.5], [99.5, 100.0], [100.0, 100.2], [100.3, 99.8]]
    head = [[106.0, 106.5], [105.5, 106.0], [107.0, 107.2], [106.3, 106.8]]
    one = compare_metric("m", base, head, REALTIME)
    assert one.verdict == "slower" and 5 < one.ci_low_pct < 6.5 < one.ci_high_pct < 8
    assert one.slower_beyond(5) and not one.slower_beyond(6.5)


def test_icount_calls_two_percent_every_time_from_two_boots_each():
    rng = np.random.default_rng(13)
    for _ in range(10):
        pairs = side_pair(rng, 1.02, 2, boot_sd=0.0003, sample_sd=0.0002)
        comparisons = compare_all(pairs, ICOUNT)
        assert all(c.verdict == "slower" and c.method == METHOD for c in comparisons)
        assert all(1.0 < c.ci_low_pct <= c.change_pct <= c.ci_high_pct < 3.0 for c in comparisons)
        same = compare_all(side_pair(rng, 1.0, 2, boot_sd=0.0003, sample_sd=0.0002), ICOUNT)
        assert all(c.verdict in ("same", "unknown") for c in same)  # unknown: presubmit boots again


def test_one_boot_a_side_says_unknown_on_every_clock():
    """One boot says nothing of how boots differ, however steady its samples."""
    for policy in (ICOUNT, REALTIME):
        one = compare_metric("m", [[100.0, 100.01] * 5], [[110.0, 110.01] * 5], policy)
        assert one.verdict == "unknown" and "1 boot(s) on a side" in one.reason and one.method == ""


def test_many_samples_in_few_boots_do_not_make_it_sure():
    """Each boot steady, boots 2x apart (real time under TCG): many samples do not make it sure."""
    base = [[20000.0 + i for i in range(10)], [40000.0 + i for i in range(10)], [21000.0 + i for i in range(10)]]
    head = [[41000.0 + i for i in range(10)], [22000.0 + i for i in range(10)], [40500.0 + i for i in range(10)]]
    comparison = compare_metric("m", base, head, REALTIME)
    assert comparison.ci_low_pct < 0 < comparison.ci_high_pct and comparison.verdict == "unknown"


def test_the_interval_widens_with_the_number_of_metrics_compared():
    rng = np.random.default_rng(14)
    base, head = boots(rng, 20000, 5), boots(rng, 20600, 5)
    widths = []
    for count in (1, 2, 6, 12):
        others = {f"other{number}": (boots(rng, 100, 5), boots(rng, 100, 5)) for number in range(count - 1)}
        (first, *_) = compare_all({"m": (base, head), **others}, REALTIME)
        assert first.confidence == pytest.approx(1 - 0.05 / count)
        widths.append(first.ci_high_pct - first.ci_low_pct)
    assert widths == sorted(widths) and len(set(widths)) == 4


def test_too_few_boots_or_no_samples_say_unknown_and_why():
    two_boots = compare_metric("m", [[100.0] * 10] * 2, [[200.0] * 10] * 2, REALTIME)
    assert two_boots.verdict == "unknown" and "needs 3" in two_boots.reason and two_boots.change_pct == \
        pytest.approx(100.0)
    missing = compare_metric("m", [[100.0]], [], REALTIME)
    assert missing.verdict == "unknown" and missing.reason == "no samples on head"
    zero = compare_metric("m", [[0.0, 0.0]] * 2, [[1.0, 1.0]] * 2, ICOUNT)
    assert zero.verdict == "unknown" and "0 us" in zero.reason


def test_more_boots_while_unknown_up_to_the_limit():
    unknown = compare_metric("m", [[100.0] * 10], [[200.0] * 10], REALTIME)
    same = compare_metric("m", [[100.0, 101.0]] * 3, [[100.0, 101.0]] * 3, REALTIME)
    assert same.verdict == "same"
    assert want_more_boots([same, unknown], 3, REALTIME)
    assert not want_more_boots([same, unknown], REALTIME.max_boots, REALTIME)
    assert not want_more_boots([same], 3, REALTIME)
