"""Where gupvm finds its own data and keeps its cache."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KCONFIGS_DIR = PROJECT_ROOT / "kconfigs"
PLANS_DIR = PROJECT_ROOT / "selftests"


def default_cache_dir() -> Path:
    if "GUPVM_CACHE" in os.environ:
        return Path(os.environ["GUPVM_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gupvm"
