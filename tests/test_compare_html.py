"""The HTML report opened in a real headless Chromium: the tables and a plot per metric are on the page."""

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_compare import side, smoke_suites  # noqa: F401 (a fixture)

from orchestrator.compare import compare
from orchestrator.compare_report import to_html

CHROMIUM = shutil.which("chromium")
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: apt-get install chromium")]


class PageReader(HTMLParser):
    """What the browser's DOM holds: table rows by table class, and inline SVG plots by figure id."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.plots: dict[str, int] = {}
        self._table = self._figure = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("class")
        elif tag == "tr" and self._table:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "figure":
            self._figure = attrs.get("id")
        elif tag == "path" and self._figure:
            self.plots[self._figure] = self.plots.get(self._figure, 0) + 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row:
            self.rows.setdefault(self._table, []).append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "figure":
            self._figure = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def chromium(page: Path, profile: Path, *action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         *action, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def test_tables_and_a_plot_per_metric_in_a_real_browser(smoke_suites, tmp_path):  # noqa: F811
    result = compare(side(tmp_path / "a", smoke_suites), side(tmp_path / "b", smoke_suites, 1.08, failing="pin_basic"),
                     fail_on_slower=5)
    page = tmp_path / "compare.html"
    page.write_text(to_html(result))
    dom = chromium(page, tmp_path / "profile", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    reader = PageReader()
    reader.feed(dom.stdout)
    timings = {row[0]: row for row in reader.rows["timings"]}
    assert set(timings) == set(result.samples) and len(timings) == 6
    metric, base, change, head, verdict = timings["x86_64/pin_fast_benchmark/get_usec"][:5]
    assert abs(int(base.split()[0]) - 28741) <= 2 and change.startswith("+8.") and "[" in change and verdict == "slower"
    steps = {row[0]: row[1] for row in reader.rows["steps"]}
    assert steps["x86_64/pin_basic"] == "new failure" and steps["x86_64/gup_basic"] == "unchanged"
    assert set(reader.plots) == {f"plot-{name}" for name in result.samples}
    assert all(count > 20 for count in reader.plots.values())  # axes, ticks, markers: drawn, not empty
    shot = tmp_path / "page.png"
    picture = chromium(page, tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,2400")
    assert picture.returncode == 0 and shot.stat().st_size > 20000, picture.stderr[-2000:]
