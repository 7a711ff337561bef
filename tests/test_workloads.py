"""gupvm's own workloads (selftests/*.c): the arithmetic of the pin limit, and what gupvm makes of their output."""

import pytest

from orchestrator.check import check_pin_limit, pins_allowed
from orchestrator.gup_programs import program_kinds, source_of
from orchestrator.parse import parse_step
from orchestrator.results import ProblemKind


@pytest.mark.parametrize(("base_refcount", "allowed"), [
    (1, 2**21),  # a page mapped once
    (2, 2**21),  # ... and held by a per-CPU LRU batch
    (1023, 2**21),
    (1024, 2**21 - 1),  # a page already holding one pin's worth of references
    (2047, 2**21 - 1),
])
def test_pins_allowed_by_the_bias_from_a_base_refcount(base_refcount, allowed):
    assert pins_allowed(base_refcount) == allowed


def test_the_last_pin_allowed_leaves_the_refcount_positive_and_the_next_would_not():
    for base in (1, 2, 512, 1023, 1024, 3000):
        last = base + 1024 * (pins_allowed(base) - 1)  # the count before the last pin granted
        assert 0 < last <= 2**31 - 1 and base + 1024 * pins_allowed(base) > 2**31 - 1


def step_output(figures: str):
    return parse_step(f"@@gupvm output\nTAP version 13\n{figures}# Totals: pass:5 fail:0\n@@gupvm kmsg\n")


def test_a_pin_limit_run_that_granted_what_the_bias_allows_passes():
    output = step_output("# figure refcount_before=3\n# figure pins_succeeded=2097152\n")
    assert output.program_figures == {"refcount_before": "3", "pins_succeeded": "2097152"}
    assert check_pin_limit(output) == []


@pytest.mark.parametrize("succeeded", [2097151, 2097153, 0])
def test_a_pin_limit_run_that_granted_more_or_fewer_names_the_figure(succeeded):
    (problem,) = check_pin_limit(step_output(f"# figure refcount_before=3\n# figure pins_succeeded={succeeded}\n"))
    assert problem.kind == ProblemKind.PIN_LIMIT
    assert problem.figures == {"allowed": 2097152, "succeeded": succeeded, "base_refcount": 2}


def test_every_own_workload_has_its_source_and_says_which_kernel_paths_it_drives():
    own = [kind for kind in program_kinds().values() if kind.own]
    assert {kind.name for kind in own} >= {"io_uring_fixed", "remote_access", "pin_limit", "o_direct", "udmabuf"}
    for kind in own:
        text = source_of(kind, None).read_text()
        assert '#include "workload.h"' in text and "ktap_plan(" in text and "return ktap_exit();" in text
