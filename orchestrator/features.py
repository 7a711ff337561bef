"""What a plan's steps may need of the kernel beyond gup_test (kconfigs/features.toml).

A feature is Kconfig options, kernel arguments and a guest set-up that
reach one of the kernel's real users of pinning (io_uring, a block device
with ext4, a movable zone, ...). A step names the features it needs; a tree
that lacks one of a feature's options cannot have it, and its steps are
skipped naming the option.
"""

import functools
import tomllib
from dataclasses import dataclass

from orchestrator.kconfig import OPTION_LINE
from orchestrator.paths import KCONFIGS_DIR

FEATURES_FILE = KCONFIGS_DIR / "features.toml"
_KEYS = ("why", "kconfig", "kernel_args", "guest_setup", "keeps_written_memory", "image", "image_mb")


@dataclass(frozen=True)
class Feature:
    name: str
    why: str
    kconfig: tuple[str, ...]  # CONFIG_X=value
    kernel_args: tuple[str, ...] = ()
    guest_setup: str = ""  # a function of the guest's init that prepares the feature
    keeps_written_memory: bool = False  # what a step writes stays in memory (a RAM disk): free memory won't come back
    image: tuple[str, ...] = ()  # the host's command that makes a filesystem image for the guest (path appended)
    image_mb: int = 0

    @property
    def options_set(self) -> tuple[str, ...]:
        """The options the feature switches on or sets: the tree must define each of them. (An option it
        switches off, to uncover another, may be gone from the tree: off is what an absent option is.)"""
        return tuple(line.split("=", 1)[0] for line in self.kconfig if not line.endswith("=n"))


@functools.cache
def features() -> dict[str, Feature]:
    table = tomllib.loads(FEATURES_FILE.read_text())
    found = {}
    for name, fields in table.items():
        if unknown := set(fields) - set(_KEYS):
            raise ValueError(f"{FEATURES_FILE}: [{name}] has unknown keys {sorted(unknown)}")
        if bad := [line for line in fields["kconfig"] if not OPTION_LINE.match(line)]:
            raise ValueError(f"{FEATURES_FILE}: [{name}] kconfig entry {bad[0]!r} is not CONFIG_NAME=value")
        found[name] = Feature(name, fields["why"], tuple(fields["kconfig"]), tuple(fields.get("kernel_args", ())),
                              fields.get("guest_setup", ""), fields.get("keeps_written_memory", False),
                              tuple(fields.get("image", ())), fields.get("image_mb", 0))
    return found


def of(names: tuple[str, ...] | list[str]) -> tuple[Feature, ...]:
    """The features among names (a step's requirements also name the guest's hugetlb and thp), in order."""
    known = features()
    return tuple(known[name] for name in dict.fromkeys(names) if name in known)

