"""The errors gupvm stops on, each carrying the exit code the CLI promises."""

import re
from enum import StrEnum

from orchestrator import exit_codes


class GupvmError(Exception):
    """A failure that ends the run with a one-line message and an exit code."""

    exit_code = exit_codes.TEST_FAILED


class UsageError(GupvmError):
    """Bad usage, bad input, or a config that cannot be satisfied."""

    exit_code = exit_codes.BAD_INPUT


class Blame(StrEnum):
    """Whose fault a failed build or boot is: bisect skips the kernel's, and retries or aborts on the host's."""

    KERNEL = "kernel"  # the tree does not compile, or its kernel does not boot
    HOST = "host"  # disk, memory, a killed tool, QEMU itself, a missing program


# What a failing tool says when the host, not the tree, is at fault.
HOST_TROUBLE = re.compile(r"No space left on device|Cannot allocate memory|Killed|Permission denied|qemu-system")


class InfrastructureError(GupvmError):
    """The build or boot machinery failed: the run could not test the kernel (exit 3)."""

    exit_code = exit_codes.INFRASTRUCTURE

    def __init__(self, message: str, blame: Blame = Blame.HOST):
        super().__init__(message)
        self.blame = blame


def shown(value: object) -> str:
    """A user's value in a one-line message: as given, or quoted when it holds control characters."""
    text = str(value)
    return text if text.isprintable() else repr(text)
