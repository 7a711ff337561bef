import signal

import pytest

from orchestrator import exit_codes


@pytest.mark.parametrize("signum, infrastructure_failed, tests_failed, expected", [
    (None, False, False, 0),
    (None, False, True, 1),
    (None, True, False, 3),
    (None, True, True, 3),  # infrastructure before a test failure
    (signal.SIGINT, False, False, 130),
    (signal.SIGTERM, True, True, 143),  # a signal before everything found after the start
])
def test_one_precedence_decides_when_outcomes_mix(signum, infrastructure_failed, tests_failed, expected):
    assert exit_codes.decide(signum=signum, infrastructure_failed=infrastructure_failed,
                             tests_failed=tests_failed) == expected
