"""Kconfig's rules, as pure functions: what an option line may say, what a .config sets, what differs.

Apart from config.py, which drives the kernel's own make to merge and
verify a config, so that plans and comparisons can use these rules without
reaching the build machinery.
"""

import re
from dataclasses import dataclass

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")
OPTION_LINE = re.compile(r'^CONFIG_[A-Za-z0-9_]+=(y|n|m|-?\d+|0x[0-9a-fA-F]+|"(?:[^"\\\x00-\x1f]|\\[^\x00-\x1f])*")$')


@dataclass(frozen=True)
class Mismatch:
    option: str
    asked: str
    actual: str
    note: str = ""  # why, where gupvm can tell: the tree has no such option

    def __str__(self) -> str:
        return f"{self.option}: asked {self.asked}, got {self.actual}" + (f" ({self.note})" if self.note else "")


def parse_config(text: str) -> dict[str, str]:
    """Options of a .config or fragment; an unset option reads as 'n'."""
    options: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if match := _SET.match(line):
            options[match.group(1)] = match.group(2)
        elif match := _UNSET.match(line):
            options[match.group(1)] = "n"
    return options


def verify(requested: dict[str, str], final: dict[str, str], checks=()) -> list[Mismatch]:
    """Options whose final value differs from the asked one; absent counts as 'n'."""
    mismatches = [
        Mismatch(option, asked, final.get(option, "n"))
        for option, asked in requested.items()
        if final.get(option, "n") != asked
    ]
    for choices in checks:
        wanted = [choice.split("=", 1) for choice in choices]
        if not any(final.get(option, "n") == value for option, value in wanted):
            mismatches.append(Mismatch(
                " or ".join(option for option, _ in wanted),
                " / ".join(value for _, value in wanted),
                " / ".join(final.get(option, "n") for option, _ in wanted),
            ))
    return mismatches
