"""The exit codes of every gupvm command, and which one wins when outcomes mix.

Bad input (2) is found before anything runs, so it never mixes. After it:
a signal (128 + its number: 130 for SIGINT, 143 for SIGTERM), then an
infrastructure failure (3: build, boot, host), then a test failure (1).
"""

PASSED = 0
TEST_FAILED = 1
BAD_INPUT = 2
INFRASTRUCTURE = 3


def for_signal(signum: int) -> int:
    return 128 + signum


def decide(*, signum: int | None, infrastructure_failed: bool, tests_failed: bool) -> int:
    if signum is not None:
        return for_signal(signum)
    if infrastructure_failed:
        return INFRASTRUCTURE
    if tests_failed:
        return TEST_FAILED
    return PASSED
