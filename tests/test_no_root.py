"""gupvm needs root only for the set-up: `build` and `run` work as an ordinary user, with a cache of its own.

A user is made for the test (useradd) and removed after it. It has no
access to /dev/kvm, so its guest runs under TCG. Its cache starts empty:
a cold unpack and build (14 minutes on the project's shared 2 cores), too
long for CI: run it with `pytest -m manual tests/test_no_root.py`.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.manual]  # a cold kernel build of its own: beyond CI's time

PROJECT = Path(__file__).resolve().parent.parent
ONE_STEP_PLAN = '[[step]]\nname = "pin_basic"\nargs = ["-b"]\nexpect = "pin"\n'


@pytest.fixture
def ordinary_user():
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("making a user needs root and useradd")
    name = f"gupvm{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="gupvm-user-"))
    subprocess.run(["useradd", "--home-dir", str(home), "--no-create-home", "--shell", "/bin/sh", name], check=True)
    user = pwd.getpwnam(name)
    os.chown(home, user.pw_uid, user.pw_gid)
    try:
        yield name, home
    finally:
        subprocess.run(["userdel", name], check=True)
        shutil.rmtree(home, ignore_errors=True)


def as_user(name: str, home: Path, *args: str) -> subprocess.CompletedProcess:
    """gupvm as that user: through this interpreter if the user may run it, else the system's with our packages."""
    site_packages = next(path for path in sys.path if path.endswith("site-packages"))
    interpreter = [sys.executable]
    if subprocess.run(["runuser", "-u", name, "--", sys.executable, "-c", "import pexpect"],
                      capture_output=True).returncode != 0:
        interpreter = ["env", f"PYTHONPATH={PROJECT}:{site_packages}", "/usr/bin/python3"]
    environment = ["env", "-i", f"HOME={home}", f"PATH={os.environ['PATH']}", "LANG=C.UTF-8"]
    return subprocess.run(
        ["runuser", "-u", name, "--", *environment, *interpreter, "-m", "orchestrator", *args],
        cwd=home, capture_output=True, text=True,
    )


def test_build_and_run_as_an_ordinary_user_with_its_own_cache(ordinary_user):
    name, home = ordinary_user
    assert subprocess.run(["runuser", "-u", name, "--", "id", "-u"], capture_output=True, text=True).stdout != "0\n"
    (home / "one.toml").write_text(ONE_STEP_PLAN)
    cache = home / "cache"
    built = as_user(name, home, "build", "--cache-dir", str(cache))
    assert built.returncode == 0, built.stdout + built.stderr
    ran = as_user(name, home, "run", "--cache-dir", str(cache), "--plan", str(home / "one.toml"))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    results = json.loads(next((home / "out").iterdir()).joinpath("results.json").read_text())
    assert results[0]["properties"]["kernel_build"] == "cached"
    assert results[0]["steps"][0]["status"] == "passed"
    owner = pwd.getpwnam(name).pw_uid
    assert all(path.stat().st_uid == owner for path in cache.rglob("*") if not path.is_symlink())
