"""The errors gupvm stops on, each carrying the exit code the CLI promises."""


class GupvmError(Exception):
    """A failure that ends the run with a one-line message and an exit code."""

    exit_code = 1


class UsageError(GupvmError):
    """Bad usage, bad input, or a config that cannot be satisfied."""

    exit_code = 2


class InfrastructureError(GupvmError):
    """The build or boot machinery failed, not the kernel under test."""

    exit_code = 3


def shown(value: object) -> str:
    """A user's value in a one-line message: as given, or quoted when it holds control characters."""
    text = str(value)
    return text if text.isprintable() else repr(text)
