"""gupvm's own workloads end to end: Debian's 7.3 tree, clean and broken on purpose in each family's kernel path.

The steps are the pinning plan's workload steps (gupvm run --plan pinning --step ...).
One branch of the repository test_pinning_e2e.py makes carries a small break
in each family's path, each the kind of bug that ships (a reference not
dropped, a refusal that does not refuse):
- io_uring: unregistering a fixed buffer unpins all but its last folio;
- remote access: process_vm_readv/writev unpin one page fewer than they pinned;
- O_DIRECT: a bio lets go of one pin fewer per multi-page folio segment;
- udmabuf: releasing the buffer unpins all but its last folio;
- the pin limit: GUP's slow path grants a pin whatever the refcount.
Each step must fail with its own failure named; on the clean tree each passes.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from git_history import _kernel_git, make_kernel_branches

from orchestrator import source
from orchestrator.gup_programs import is_own_workload
from orchestrator.paths import default_cache_dir
from orchestrator.plan import load_plan

pytestmark = pytest.mark.e2e

BROKEN = "workloads-broken"
EDITS = [
    ("io_uring/rsrc.c", "\t\tunpin_user_folio(folio, 1);\n\t}\n}\n",
     "\t\tif (i + 1 < imu->nr_bvecs)\n\t\t\tunpin_user_folio(folio, 1);\n\t}\n}\n",
     "io_uring: unregistering a buffer keeps its last folio pinned (broken on purpose)"),
    ("mm/process_vm_access.c", "unpin_user_pages_dirty_lock(process_pages, pinned_pages,",
     "unpin_user_pages_dirty_lock(process_pages, pinned_pages - 1,",
     "mm/process_vm_access: unpin one page fewer than pinned (broken on purpose)"),
    ("block/bio.c", "\t\tunpin_user_folio(fi.folio, nr_pages);\n\t}\n}\nEXPORT_SYMBOL_GPL(__bio_release_pages);",
     "\t\tunpin_user_folio(fi.folio, nr_pages - (nr_pages > 1));\n\t}\n}\n"
     "EXPORT_SYMBOL_GPL(__bio_release_pages);",
     "block: a bio keeps one pin of each multi-page folio segment (broken on purpose)"),
    ("drivers/dma-buf/udmabuf.c", "\tfor (i = 0; i < ubuf->nr_pinned; ++i)\n\t\tunpin_folio(",
     "\tfor (i = 0; i + 1 < ubuf->nr_pinned; ++i)\n\t\tunpin_folio(",
     "udmabuf: releasing a buffer keeps its last folio pinned (broken on purpose)"),
    ("mm/gup.c", "\tif (WARN_ON_ONCE(folio_ref_count(folio) <= 0))\n\t\treturn -ENOMEM;\n\n"
     "\tif (unlikely(!(flags & FOLL_PCI_P2PDMA)",
     "\tif (unlikely(!(flags & FOLL_PCI_P2PDMA)",
     "mm/gup: grant a pin whatever the refcount (broken on purpose)"),
]


def workload_steps() -> list[str]:
    """The pinning plan's steps that run gupvm's own workloads."""
    return [step.name for step in load_plan("pinning").steps if is_own_workload(step.program)]


@pytest.fixture(scope="module")
def kernels() -> Path:
    cache = default_cache_dir()
    return make_kernel_branches(cache / "test-histories" / "debian-7.3-pinning",
                                source.resolve("debian:7.3", cache).path, {BROKEN: EDITS})


def run(kernels: Path, branch: str, tmp_path: Path) -> tuple[int, dict[str, dict]]:
    _kernel_git(kernels, "checkout", "-q", "--force", branch)
    steps = [f"--step={name}" for name in workload_steps()]
    result = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--kernel-src", str(kernels),
                             "--plan", "pinning", *steps, "--out", str(tmp_path / "out")], capture_output=True,
                            text=True)
    (suite,) = json.loads(next((tmp_path / "out").glob("*/results.json")).read_text())
    assert suite["build"]["status"] == "passed", suite["build"]
    return result.returncode, {step["name"]: step for step in suite["steps"]}


def kinds(step: dict) -> set[str]:
    return {problem["kind"] for problem in step["problems"]}


def test_every_workload_passes_on_the_clean_kernel(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "main", tmp_path)
    assert code == 0, {name: step["message"] for name, step in steps.items()}
    assert steps and all(step["status"] == "passed" for step in steps.values())
    limit = steps["pin_limit-io_uring"]["figures"]
    # The page maps 8192 times in the range its buffers span: a base refcount of 8193, so 2^21 - 8 pins.
    assert (limit["refcount_before"], limit["pins_succeeded"]) == ("8194", str(2**21 - 8))
    assert limit["refcount_after"] == limit["refcount_before"] and limit["expected_warnings"] != "0"


def test_each_familys_break_fails_its_own_step_with_the_failure_named(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, BROKEN, tmp_path)
    assert code == 1
    for name in ("io_uring-fixed-buffers", "remote-access", "o_direct", "udmabuf-shmem", "udmabuf-hugetlb"):
        assert "imbalance" in kinds(steps[name]), (name, steps[name]["message"])
    assert "huge-pages-not-freed" in kinds(steps["o_direct"])
    assert "pin-limit" in kinds(steps["pin_limit-io_uring"]), steps["pin_limit-io_uring"]["message"]
