"""Timing samples: how a plan asks gup_test for several, and how a step's output gives them back.

gup_test -r N repeats its benchmark N times in one process and prints one
Time line per repeat, so N samples cost one boot and one gup_test start.
"""

import dataclasses
import getopt

from orchestrator.gup_args import PLAN_GETOPT, parse_gup_args
from orchestrator.parse import StepOutput
from orchestrator.plan import Plan, Step

METRICS = ("get_usec", "put_usec")


def is_benchmark(step: Step) -> bool:
    # Placeholders ({huge}) only ever stand for numbers: any number parses the same.
    args = [arg.format(huge=512, huge_last=511) for arg in step.args]
    return step.program == "gup_test" and parse_gup_args(args).benchmark


def with_samples(plan: Plan, samples: int | None) -> Plan:
    """The plan with each gup_test benchmark step repeated `samples` times (-r), replacing any -r it had."""
    if samples is None:
        return plan
    steps = []
    for step in plan.steps:
        if is_benchmark(step):
            options, rest = getopt.getopt(list(step.args), PLAN_GETOPT)
            kept = [part for flag, value in options if flag != "-r" for part in (flag, value) if part]
            step = dataclasses.replace(step, args=(*kept, "-r", str(samples), *rest))
        steps.append(step)
    return dataclasses.replace(plan, steps=tuple(steps))


def timing_samples(output: StepOutput | None) -> dict[str, list[int]]:
    """Each metric's samples, one per Time line, in the order gup_test printed them."""
    reports = [report for report in (output.reports if output else ()) if report.get_usec is not None]
    if not reports:
        return {}
    return {"get_usec": [report.get_usec for report in reports], "put_usec": [report.put_usec for report in reports]}
