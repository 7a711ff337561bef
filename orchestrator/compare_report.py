"""What a comparison shows: the terminal table in lkp's layout, compare.json, and an HTML page with plots."""

import dataclasses
import html
import io
import json
import math

import matplotlib

matplotlib.use("Agg")  # files only, never a display
import matplotlib.pyplot as plt  # noqa: E402

from orchestrator.compare import CompareResult  # noqa: E402
from orchestrator.layout import COMPARE_HTML, COMPARE_JSON  # noqa: E402
from orchestrator.paths import write_atomically  # noqa: E402
from orchestrator.report import JudgedCase, verdicts_junit_xml  # noqa: E402
from orchestrator.step_compare import Change  # noqa: E402
from orchestrator.timing_stats import METHOD, Comparison  # noqa: E402

ACROSS_HOSTS = " (across hosts)"


def _number(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0f}"


def _interval(timing: Comparison) -> str:
    if math.isnan(timing.change_pct):
        return "-"
    return f"{timing.change_pct:+.1f}% [{timing.ci_low_pct:+.1f}, {timing.ci_high_pct:+.1f}]"


def verdict_label(result: CompareResult, timing: Comparison) -> str:
    return timing.verdict + (ACROSS_HOSTS if result.across_hosts else "")


def _sides_line(result: CompareResult) -> str:
    return (f"base: {len(result.base_runs)} boot(s) in {', '.join(map(str, result.base_runs))}\n"
            f"head: {len(result.head_runs)} boot(s) in {', '.join(map(str, result.head_runs))}")


def host_lines(result: CompareResult) -> list[str]:
    return [f"host facts differ: {fact}: base {', '.join(base) or '-'}; head {', '.join(head) or '-'}"
            for fact, (base, head) in result.host_differences.items()]


def table(result: CompareResult) -> str:
    """lkp's compare layout: base, %change with its interval, head, then the verdict and the metric."""
    lines = [_sides_line(result), f"clock: {result.clock}", *host_lines(result), ""]
    if result.timings:
        confidence = result.timings[0].confidence
        lines.append(f"{'base':>16}  {'%change [' + f'{confidence:.1%}' + ' interval]':^30}  {'head':>16}  "
                     f"{'verdict':<8} metric")
        lines.append(f"{'-' * 16}  {'-' * 30}  {'-' * 16}  {'-' * 8} {'-' * 6}")
        for timing in result.timings:
            base = f"{_number(timing.base_median)} ±{timing.base_spread_pct:4.1f}%"
            head = f"{_number(timing.head_median)} ±{timing.head_spread_pct:4.1f}%"
            lines.append(f"{base:>16}  {_interval(timing):^30}  {head:>16}  "
                         f"{verdict_label(result, timing):<8} {timing.metric}")
        lines.append("")
    unchanged = [step for step in result.steps if step.kind == Change.UNCHANGED and not step.detail]
    for step in result.steps:
        if step not in unchanged:
            detail = f": {step.detail}" if step.detail else ""
            lines.append(f"{step.kind.upper():<14} {step.name} (base {step.base}, head {step.head}){detail}")
    lines.append(f"{len(unchanged)} step(s) unchanged")
    for timing in result.slowdowns:
        lines.append(f"SLOWER > {result.fail_on_slower:g}%  {timing.metric}: {_interval(timing)}")
    return "\n".join(lines)


def _clean(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(item) for item in value]
    return str(value) if not isinstance(value, (int, float, str, bool, type(None))) else value


def to_json(result: CompareResult) -> str:
    data = {
        "base_runs": result.base_runs,
        "head_runs": result.head_runs,
        "clock": result.clock,
        "across_hosts": result.across_hosts,
        "host_differences": result.host_differences,
        "fail_on_slower": result.fail_on_slower,
        "exit_code": result.exit_code,
        "base_broken": result.base_broken,
        "steps": [dataclasses.asdict(step) for step in result.steps],
        "timings": [dataclasses.asdict(timing) for timing in result.timings],
        "samples": {name: {"base": base, "head": head} for name, (base, head) in result.samples.items()},
    }
    return json.dumps(_clean(data), indent=2)


def junit_verdicts(result: CompareResult) -> list[JudgedCase]:
    """Testcases: each step (a new failure fails), and each metric (with --fail-on-slower, a slowdown fails)."""
    cases = []
    for step in result.steps:
        text = f"base {step.base}, head {step.head}" + (f": {step.detail}" if step.detail else "")
        cases.append(JudgedCase(
            step.name, "steps", failure=f"new failure: {step.detail}" if step.kind == Change.NEW_FAILURE else "",
            skipped=step.detail if step.kind == Change.SKIPPED else "", detail=f"{step.kind}: {text}",
        ))
    slow = {timing.metric for timing in result.slowdowns}
    for timing in result.timings:
        text = (f"{verdict_label(result, timing)}: base {_number(timing.base_median)} us, head "
                f"{_number(timing.head_median)} us, {_interval(timing)} ({timing.confidence:.1%} interval); "
                f"{timing.reason}")
        failure = f"slower by more than {result.fail_on_slower:g}%: {text}" if timing.metric in slow else ""
        cases.append(JudgedCase(timing.metric, f"timings ({result.clock})", failure=failure, detail=text))
    return cases


def plot_svg(metric: str, base: list[list[float]], head: list[list[float]], title: str) -> str:
    """Every sample of both sides, boot by boot, with each side's median of boot medians."""
    figure, axes = plt.subplots(figsize=(6.4, 3.2))
    for position, (label, boots, colour) in enumerate((("base", base, "tab:blue"), ("head", head, "tab:orange"))):
        for number, samples in enumerate(boots):
            offset = position + (number - (len(boots) - 1) / 2) * min(0.5 / max(len(boots), 1), 0.12)
            axes.scatter([offset] * len(samples), samples, s=12, color=colour, alpha=0.6,
                         label=label if number == 0 else None)
        if boots:
            median = sorted(sorted(samples)[len(samples) // 2] for samples in boots)[len(boots) // 2]
            axes.hlines(median, position - 0.3, position + 0.3, color=colour, linewidth=2)
    axes.set_xticks([0, 1], [f"base, {len(base)} boot(s)", f"head, {len(head)} boot(s)"])
    axes.set_xlim(-0.6, 1.6)
    axes.set_ylabel("us")
    axes.set_title(f"{metric}\n{title}", fontsize=9)
    figure.tight_layout()
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg")
    plt.close(figure)
    svg = buffer.getvalue()
    return svg[svg.index("<svg"):]


def _rows(cells: list[list[str]], header: list[str], css_class: str) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in cells)
    return f'<table class="{css_class}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def to_html(result: CompareResult) -> str:
    timing_rows = [
        [timing.metric, f"{_number(timing.base_median)} ±{timing.base_spread_pct:.1f}%", _interval(timing),
         f"{_number(timing.head_median)} ±{timing.head_spread_pct:.1f}%", verdict_label(result, timing),
         timing.reason]
        for timing in result.timings
    ]
    step_rows = [[step.name, step.kind, step.base, step.head, step.detail] for step in result.steps]
    plots = "".join(
        f'<figure class="plot" id="plot-{html.escape(timing.metric)}">'
        + plot_svg(timing.metric, *result.samples[timing.metric], f"{verdict_label(result, timing)}, "
                   f"{_interval(timing)}")
        + "</figure>"
        for timing in result.timings
    )
    hosts = "".join(f"<li>{html.escape(line)}</li>" for line in host_lines(result))
    confidence = f"{result.timings[0].confidence:.1%}" if result.timings else "95%"
    method = " and ".join(sorted({timing.method for timing in result.timings if timing.method})) or METHOD
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gupvm compare</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
figure.plot {{ display: inline-block; margin: 0.5em; }}
</style></head><body>
<h1>gupvm compare: exit {result.exit_code}</h1>
<pre>{html.escape(_sides_line(result))}</pre>
<p>Clock: {html.escape(result.clock)}. Intervals are {confidence} intervals of the % change of the boots'
medians ({html.escape(method)}), widened for the {len(result.timings)} metrics compared.</p>
<ul class="hosts">{hosts}</ul>
<h2>Timings</h2>
{_rows(timing_rows, ["metric", "base", "%change [interval]", "head", "verdict", "why"], "timings")}
<h2>Steps</h2>
{_rows(step_rows, ["step", "verdict", "base", "head", "detail"], "steps")}
<h2>Samples</h2>
{plots}
</body></html>
"""


def write_all(result: CompareResult, directory, junit_path, extra: list[JudgedCase] = ()) -> None:
    """compare.json, compare.html and the JUnit file (with any extra testcases, e.g. a series' commits)."""
    directory.mkdir(parents=True, exist_ok=True)
    write_atomically(directory / COMPARE_JSON, to_json(result))
    write_atomically(directory / COMPARE_HTML, to_html(result))
    properties = {"clock": result.clock, "across_hosts": "yes" if result.across_hosts else "no",
                  "base_runs": " ".join(map(str, result.base_runs)), "head_runs": " ".join(map(str, result.head_runs))}
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    junit_path.write_text(verdicts_junit_xml("gupvm compare", properties, junit_verdicts(result) + list(extra)))
