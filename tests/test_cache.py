"""gupvm cache: listing and pruning a cache laid out as gupvm lays it out."""

import os
import time
from pathlib import Path

from orchestrator.cache import entries, listing, prune
from orchestrator.cli import main
from orchestrator.paths import exclusive, mark_used

DAY = 86400


def make_cache(root: Path, now: float) -> dict[str, Path]:
    made = {}
    for kind, name, age_days in (("src", "linux-source-7.3_7.3~rc7-1~exp1", 40), ("builds", "debian-7.3-x86_64", 40),
                                 ("builds", "debian-6.1-x86_64", 1), ("debian", "linux-source-7.3_x.tar.xz", 40)):
        path = root / kind / name
        if name.endswith(".tar.xz"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 1000)
        else:
            (path / "sub").mkdir(parents=True)
            (path / "sub/file").write_bytes(b"x" * 2048)
            mark_used(path)
            os.utime(path / ".gupvm-used", (now - age_days * DAY, now - age_days * DAY))
        os.utime(path, (now - age_days * DAY, now - age_days * DAY))
        made[name] = path
    return made


def test_listing_names_each_entry_with_its_kind_size_and_age(tmp_path: Path):
    now = time.time()
    make_cache(tmp_path, now)
    text = listing(tmp_path, now)
    assert "unpacked source tree" in text and "build directory" in text and "fetched source tarball" in text
    assert "40.0 d" in text and "1.0 d" in text
    assert text.splitlines()[-1].startswith("4 entries, ")


def test_prune_removes_what_was_not_used_and_keeps_what_is_busy(tmp_path: Path):
    now = time.time()
    made = make_cache(tmp_path, now)
    with exclusive(made["debian-7.3-x86_64"].with_name("debian-7.3-x86_64.lock")):  # a run is building there
        removed, busy = prune(tmp_path, 30, now)
    assert {entry.path for entry in removed} == {made["linux-source-7.3_7.3~rc7-1~exp1"],
                                                  made["linux-source-7.3_x.tar.xz"]}
    assert busy == [made["debian-7.3-x86_64"]]
    assert {entry.path.name for entry in entries(tmp_path)} == {"debian-7.3-x86_64", "debian-6.1-x86_64"}


def test_cache_command(tmp_path: Path, capsys):
    make_cache(tmp_path, time.time())
    assert main(["cache", "--cache-dir", str(tmp_path)]) == 0
    assert "4 entries" in capsys.readouterr().out
    assert main(["cache", "prune", "--older-than", "0", "--cache-dir", str(tmp_path)]) == 0
    assert entries(tmp_path) == []
    assert main(["cache", "prune", "--older-than", "-1", "--cache-dir", str(tmp_path)]) == 2
