"""The checks beyond the pin counters, end to end: Debian's 7.3 tree, clean and broken on purpose four ways.

Each branch of a repository made from the tree breaks one thing the pinning
plan's checks promise to see, in the kernel's own code, and gupvm must fail
it with that failure's kind named, where the clean tree passes:
- leak: GUP's slow path takes one reference too many per FOLL_GET grab, so the
  pages gup_test got are never freed (free memory and free huge pages do not
  come back);
- unmigrated: long-term pins no longer migrate what they pin out of
  ZONE_MOVABLE, as if that zone were fit for them (the dumped pinned pages
  sit in it);
- hang: io_uring's buffer registration sleeps uninterruptibly for ever (cow's
  io_uring cases hang: the step times out, the next steps run in a new boot);
- cow-leak: a write fault on a THP shared by fork reuses it when one other
  reference is held, so the child's write shows in the parent (cow's "Basic
  COW after fork() ... with THP" cases fail).
- workloads: a small break in the kernel path of each of gupvm's own
  workloads, each the kind of bug that ships (a reference not dropped, a
  refusal that does not refuse): unregistering an io_uring fixed buffer
  unpins all but its last folio; process_vm_readv/writev unpin one page
  fewer than they pinned; a bio lets go of one pin fewer per multi-page
  folio segment (O_DIRECT); releasing a udmabuf unpins all but its last
  folio; GUP's slow path grants a pin whatever the refcount (the pin limit).
  Each workload's step fails with its own failure named.
The plan's steps need what the pinning plan's do, so the kernel is the
pinning plan's: one cold build, then an incremental build per branch.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from git_history import _kernel_git, make_kernel_branches

from orchestrator import source
from orchestrator.paths import default_cache_dir

pytestmark = pytest.mark.e2e

PLAN = Path(__file__).parent / "data/pinning-broken.plan.toml"
WORKLOAD_EDITS = [
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

BRANCHES = {
    "leak": [("mm/gup.c", "\tif (flags & FOLL_GET)\n\t\tfolio_ref_add(folio, refs);\n",
              "\tif (flags & FOLL_GET)\n\t\tfolio_ref_add(folio, refs + 1);\n",
              "mm/gup: take one reference too many in the slow path (broken on purpose)")],
    "unmigrated": [("mm/gup.c", "\t\tif (folio_is_longterm_pinnable(folio))\n\t\t\tcontinue;\n\n\t\tcollected++;",
                    "\t\tif (folio_is_longterm_pinnable(folio) || folio_zonenum(folio) == ZONE_MOVABLE)\n"
                    "\t\t\tcontinue;\n\n\t\tcollected++;",
                    "mm/gup: take a folio in ZONE_MOVABLE for long-term pinnable (broken on purpose)")],
    "hang": [("io_uring/rsrc.c", "\tBUILD_BUG_ON(IORING_MAX_REG_BUFFERS >= (1u << 16));\n",
              "\tBUILD_BUG_ON(IORING_MAX_REG_BUFFERS >= (1u << 16));\n"
              "\tschedule_timeout_uninterruptible(MAX_SCHEDULE_TIMEOUT);\n",
              "io_uring: registering buffers sleeps for ever (broken on purpose)")],
    "cow-leak": [("mm/huge_memory.c",
                  "\tif (folio_ref_count(folio) >\n\t\t\t1 + folio_test_swapcache(folio) * folio_nr_pages(folio))\n"
                  "\t\tgoto unlock_fallback;\n\tif (folio_test_swapcache(folio))\n\t\tfolio_free_swap(folio);\n"
                  "\tif (folio_ref_count(folio) == 1) {\n",
                  "\tif (folio_ref_count(folio) >\n\t\t\t2 + folio_test_swapcache(folio) * folio_nr_pages(folio))\n"
                  "\t\tgoto unlock_fallback;\n\tif (folio_test_swapcache(folio))\n\t\tfolio_free_swap(folio);\n"
                  "\tif (folio_ref_count(folio) <= 2) {\n",
                  "mm/huge_memory: reuse a THP that one other reference shares (broken on purpose)")],
    "workloads": WORKLOAD_EDITS,
}


@pytest.fixture(scope="module")
def kernels() -> Path:
    cache = default_cache_dir()
    return make_kernel_branches(cache / "test-histories" / "debian-7.3-pinning",
                                source.resolve("debian:7.3", cache).path, BRANCHES)


def run(kernels: Path, branch: str, tmp_path: Path) -> tuple[int, dict[str, dict]]:
    _kernel_git(kernels, "checkout", "-q", "--force", branch)
    result = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--kernel-src", str(kernels),
                             "--plan", str(PLAN), "--out", str(tmp_path)], capture_output=True, text=True)
    (suite,) = json.loads(next(tmp_path.glob("*/results.json")).read_text())
    assert suite["build"]["status"] == "passed", suite["build"]
    return result.returncode, {step["name"]: step for step in suite["steps"]}


def kinds(step: dict) -> list[str]:
    return [problem["kind"] for problem in step["problems"]]


def test_the_clean_kernel_passes_every_step(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "main", tmp_path)
    assert code == 0, {name: step["message"] for name, step in steps.items()}
    assert all(step["status"] == "passed" for step in steps.values())
    limit = steps["pin_limit-io_uring"]["figures"]
    # The page maps 8192 times in the range its buffers span: a base refcount of 8193, so 2^21 - 8 pins.
    assert (limit["refcount_before"], limit["pins_succeeded"]) == ("8194", str(2**21 - 8))
    assert limit["refcount_after"] == limit["refcount_before"] and limit["expected_warnings"] != "0"


def test_a_leaked_page_reference_is_memory_and_huge_pages_not_freed(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "leak", tmp_path)
    assert code == 1
    assert "memory-not-freed" in kinds(steps["get-base"])
    assert "huge-pages-not-freed" in kinds(steps["hugetlb-get"])


def test_a_long_term_pin_left_in_the_movable_zone_is_named(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "unmigrated", tmp_path)
    assert code == 1
    assert kinds(steps["movable-dump-longterm"]) == ["longterm-pin-movable"] * 3
    assert steps["get-base"]["status"] == "passed"


def test_a_hang_in_io_uring_times_out_cow_and_the_run_goes_on(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "hang", tmp_path)
    assert code == 1
    assert steps["cow"]["status"] == "timeout" and kinds(steps["cow"]) == ["timeout"]
    assert steps["movable-dump-longterm"]["status"] == "passed"


def test_a_cow_that_leaks_a_write_fails_cows_thp_cases(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "cow-leak", tmp_path)
    assert code == 1
    ktap = [problem for problem in steps["cow"]["problems"] if problem["kind"] == "ktap"]
    assert ktap and any("Basic COW after fork()" in case and "THP" in case for case in ktap[0]["about"])


def test_each_workloads_break_fails_its_own_step_with_the_failure_named(kernels: Path, tmp_path: Path):
    code, steps = run(kernels, "workloads", tmp_path)
    assert code == 1
    for name in ("io_uring-fixed-buffers", "remote-access", "o_direct", "udmabuf-shmem", "udmabuf-hugetlb"):
        assert "imbalance" in kinds(steps[name]), (name, steps[name]["message"])
    assert "huge-pages-not-freed" in kinds(steps["o_direct"])
    assert "pin-limit" in kinds(steps["pin_limit-io_uring"]), steps["pin_limit-io_uring"]["message"]
    assert steps["get-base"]["status"] == "passed"
