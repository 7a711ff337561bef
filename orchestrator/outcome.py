"""The exit code of a run, or of shards merged into one: the table in the README."""

from collections.abc import Iterable

EXIT_PASSED, EXIT_TEST_FAILED, EXIT_INFRASTRUCTURE = 0, 1, 3  # 2, bad input: UsageError


def exit_code(stage_statuses: Iterable[str], step_statuses: Iterable[str]) -> int:
    """3 if a build or boot failed (or a cell is missing), else 1 if a step did not pass or skip, else 0."""
    if any(status == "failed" for status in stage_statuses):
        return EXIT_INFRASTRUCTURE
    if any(status not in ("passed", "skipped") for status in step_statuses):
        return EXIT_TEST_FAILED
    return EXIT_PASSED
