"""Reports: files written, terminal/Markdown tables, and the HTML opened in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from watchbench.report import compare_markdown, compare_table, write_report
from watchbench.results import ingest_run, load_runs
from watchbench.runner import default_runner
from watchbench.stats import ComparisonError, compare_frames

DATA = Path(__file__).parent / "data" / "results"
BASE, CAND = ["sample-baseline"], ["sample-candidate"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    runs = tmp_path_factory.mktemp("report") / "runs"
    shutil.copytree(DATA / "runs", runs)
    for run in sorted(runs.iterdir()):
        ingest_run(run)
    return load_runs(runs)


@pytest.fixture(scope="module")
def report(results: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(results, tmp_path_factory.mktemp("out") / "reports",
                        baseline=BASE, candidate=CAND)


def test_report_writes_html_markdown_and_csv(report: Path):
    assert report.name == "index.html"
    html = report.read_text()
    assert report.stat().st_size < 5_000_000
    assert html.count("<svg") >= 12
    for name in ("keyctl-post", "kernel-post", "py-pipe-read", "sample-candidate",
                 "pipe2(O_NOTIFICATION_PIPE): ENOPKG", "A/B comparison"):
        assert name in html
    assert 'class="v-regressed"' in html or "v-regressed" in html
    csv = pd.read_csv(report.parent / "results.csv")
    assert {"benchmark", "params", "metric", "accel", "kernel", "n", "median", "ci_low",
            "ci_high"} <= set(csv.columns)
    watched = csv[(csv["params"].str.contains("case=watched")) & (csv["metric"] == "ns_per_op")]
    assert sorted(watched["n"]) == [8, 8]
    md = (report.parent / "summary.md").read_text()
    assert "🔴 regressed | keyctl-post" in md and "## Skipped or failed" in md


def test_report_is_self_contained(report: Path):
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids across inline SVGs"


def test_compare_table_is_aligned_and_leads_with_regressions(results: pd.DataFrame):
    comparisons = compare_frames(results, BASE, CAND)
    text = compare_table(comparisons)
    lines = text.splitlines()
    header, rule, first = lines[0], lines[1], lines[2]
    assert first.startswith("regressed") and "keyctl-post" in first
    end = header.index("change") + len("change")
    table_rows = [line for line in lines[2:] if line and line.split()[0] in
                  {"regressed", "improved", "inconclusive", "unchanged"}]
    assert len(table_rows) == len(comparisons)
    for line in table_rows:  # right-aligned column: every value ends where the header does
        assert line[end - 1] in "%–" and line[end] == " ", line
    assert set(rule) <= {"-", " "}
    assert "\033[31mregressed" in compare_table(comparisons, color=True)
    assert "\033[" not in text


def test_compare_markdown_is_a_well_formed_table(results: pd.DataFrame):
    md = compare_markdown(compare_frames(results, BASE, CAND))
    rows = [line for line in md.splitlines() if line.startswith("|")]
    cells = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
    assert len(cells) == 1 and len(rows) == 2 + 9
    assert "2 regressed" in md


def test_report_refuses_to_compare_runs_under_different_accelerators(
    results: pd.DataFrame, tmp_path: Path
):
    mixed = results.copy()
    mixed["accel"] = mixed["accel"].astype("string")
    mixed.loc[mixed["run_id"] == "sample-candidate", "accel"] = "kvm"
    with pytest.raises(ComparisonError, match="different accelerators"):
        write_report(mixed, tmp_path, baseline=BASE, candidate=CAND)
    assert not (tmp_path / "index.html").exists()


def test_report_draws_per_patch_charts_when_runs_per_patch_exist(
    results: pd.DataFrame, tmp_path: Path
):
    frames = []
    for index in range(3):
        part = results[results["run_id"] == "sample-candidate"].copy()
        part["run_id"] = f"patch-{index}"
        part["patch_index"] = index
        part["patch_subject"] = f"watch_queue: step {index}"
        part["series_hash"] = f"s{index}"
        part["value"] = part["value"] * (1 + 0.05 * index)
        frames.append(part)
    patched = pd.concat(frames, ignore_index=True)
    html = write_report(patched, tmp_path, baseline=None, candidate=None).read_text()
    assert "median and 95 % CI per patch" in html
    assert "watch_queue: step 2" in html
    assert "A/B comparison</h2>" not in html
    empty = patched.iloc[0:0]
    with pytest.raises(Exception, match="no results"):
        write_report(empty, tmp_path, baseline=None, candidate=None)


# --- headless Chromium ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH "
                                    "(the test setup installs Debian's chromium package)")

# Injected into a copy of the page: records uncaught errors, failed resource loads and
# console.error/warn calls, and writes them into the DOM that --dump-dom prints.
HARNESS = """<script>
window.__wb = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__wb.push(t && t !== window ? "resource failed: " + (t.src || t.href || t.tagName)
                                     : "error: " + e.message);
}, true);
window.addEventListener("unhandledrejection", function (e) { window.__wb.push("rejection"); });
["error", "warn"].forEach(function (level) {
  var original = console[level];
  console[level] = function () {
    window.__wb.push(level + ": " + Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
});
window.addEventListener("load", function () {
  var pre = document.createElement("pre");
  pre.id = "wb-console";
  pre.textContent = JSON.stringify(window.__wb);
  document.body.appendChild(pre);
});
</script>"""


def _chromium(tmp: Path, *args: str) -> tuple[str, str]:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={tmp / 'chromium-profile'}",
            "--enable-logging=stderr", "--v=0", *args]
    done = default_runner.run(argv, timeout=120, check=False)
    return done.stdout, done.stderr


def console_problems(page: Path, tmp: Path) -> list[str]:
    """Errors the page produced in Chromium: console lines on stderr plus the harness log."""
    probe = page.with_name(f"probe-{page.name}")
    probe.write_text(page.read_text().replace("<head>", "<head>" + HARNESS, 1))
    dom, stderr = _chromium(tmp, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    problems = [line for line in stderr.splitlines() if ":CONSOLE" in line]
    found = re.search(r'<pre id="wb-console">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not finish loading in Chromium:\n{stderr[-2000:]}"
    problems += json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    probe.unlink()
    return problems


@needs_chromium
@pytest.mark.parametrize(("body", "expected"), [
    ("<script>throw new Error('deliberate failure')</script>", "deliberate failure"),
    ("<script>console.error('logged problem')</script>", "logged problem"),
    ("<img src='missing-figure.svg'>", "missing-figure.svg"),
])
def test_the_console_check_catches_a_broken_page(tmp_path: Path, body: str, expected: str):
    page = tmp_path / "broken.html"
    page.write_text(f"<!doctype html><html><head><title>x</title></head><body>{body}</body>"
                    "</html>")
    problems = console_problems(page, tmp_path)
    assert any(expected in p for p in problems), problems


@needs_chromium
def test_report_opens_in_chromium_without_console_errors(report: Path, tmp_path: Path):
    assert console_problems(report, tmp_path) == []
    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2400",
              "--hide-scrollbars", report.as_uri())
    assert shot.exists(), "Chromium wrote no screenshot"
    pixels = imread(shot)
    assert pixels.shape[:2] == (2400, 1280)
    assert float(np.std(pixels[..., :3])) > 0.05, "the screenshot is blank"
