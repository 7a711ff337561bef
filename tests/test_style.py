import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# ruff comes with the test extras, next to this interpreter (a virtualenv is not always on PATH).
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is installed with the test extras: pip install -e '.[test]'")
def test_ruff_finds_nothing():
    result = subprocess.run([RUFF, "check", "orchestrator", "tests", "benchmarks"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
