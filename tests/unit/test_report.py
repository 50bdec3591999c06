"""Reports: files written, terminal/Markdown tables, and the HTML opened in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from tests.chromium import _chromium, console_problems, needs_chromium, too_wide
from tests.recorded import SAMPLES, ingested
from watchbench.report import compare_markdown, compare_table, write_report
from watchbench.report.text import MIN_WIDTH
from watchbench.stats.compare import ComparisonError, compare_frames

BASE, CAND = ["sample-baseline"], ["sample-candidate"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    return ingested(SAMPLES, tmp_path_factory.mktemp("report") / "runs")


@pytest.fixture(scope="module")
def report(results: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(results, tmp_path_factory.mktemp("out") / "reports",
                        baseline=BASE, candidate=CAND)


ROUNDS = 5


def _paired_boots(results: pd.DataFrame, rounds: int = ROUNDS, boot_cv: float = 0.004,
                  seed: int = 2) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Each sample run booted ``rounds`` times, the two sides paired by ``ci_round``.

    Every boot scales each of its metrics by its own factor exp(N(0, boot_cv)), the boot
    effect; the repeats inside a boot keep the sample run's spread. The candidate's
    keyctl-post case=watched is ~8 % slower and its overflow benchmark is skipped, as in
    the sample runs.
    """
    rng = np.random.default_rng(seed)
    frames, ids = [], {"baseline": [], "candidate": []}
    for side, source in (("baseline", BASE[0]), ("candidate", CAND[0])):
        for r in range(rounds):
            part = results[results["run_id"] == source].copy()
            part = part.astype({"run_id": "string", "ci_id": "string"})
            run_id = f"{side}-{r}"
            part["run_id"], part["ci_id"], part["ci_round"] = run_id, "ci-test", r
            part["timestamp"] = part["timestamp"] + pd.Timedelta(minutes=2 * r)
            key = part["benchmark"].astype(str) + part["params"].astype(str) \
                + part["metric"].astype("string").fillna("")
            effect = {k: rng.normal(0, boot_cv) for k in sorted(key.unique())}
            part["value"] = part["value"] * np.exp(key.map(effect).to_numpy(float))
            frames.append(part)
            ids[side].append(run_id)
    return pd.concat(frames, ignore_index=True), ids["baseline"], ids["candidate"]


@pytest.fixture(scope="module")
def boots(results: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    return _paired_boots(results)


@pytest.fixture(scope="module")
def boots_report(boots, tmp_path_factory: pytest.TempPathFactory) -> Path:
    df, base, cand = boots
    return write_report(df, tmp_path_factory.mktemp("boots") / "reports", baseline=base,
                        candidate=cand)


def _section(html: str, anchor: str) -> str:
    """The HTML from the heading with id ``anchor`` up to the next h2."""
    start = html.index(f'<h2 id="{anchor}"')
    end = html.find("<h2", start + 1)
    return html[start:end if end > 0 else len(html)]


def test_report_writes_html_markdown_and_csv(report: Path):
    assert report.name == "index.html"
    html = report.read_text()
    assert report.stat().st_size < 5_000_000
    assert html.count("<svg") >= 8  # per primary metric, plus the A/B figures
    for name in ("keyctl-post", "kernel-post", "py-pipe-read", "sample-candidate",
                 "pipe2(O_NOTIFICATION_PIPE): ENOPKG", "A/B comparison"):
        assert name in html
    # one boot per side decides nothing, but the candidate's skipped benchmark fails closed
    ab = _section(html, "ab")
    assert 'class="v-failed"' in ab and "1 failed" in ab and "8 undecided" not in ab
    assert "6 undecided" in ab  # the gated family; the two display-only rows are apart
    assert "inconclusive" not in html
    csv = pd.read_csv(report.parent / "results.csv")
    assert {"benchmark", "params", "metric", "accel", "kernel", "n", "centre", "scale", "ci_low",
            "ci_high"} <= set(csv.columns)
    watched = csv[(csv["params"].str.contains("case=watched")) & (csv["metric"] == "ns_per_op")]
    assert sorted(watched["n"]) == [8, 8]
    md = (report.parent / "summary.md").read_text()
    assert "⛔ failed | overflow" in md and "Skipped or failed: overflow skipped" in md
    assert md.startswith("# watchbench report\n")  # no verdict: not a gate's summary
    assert md.count("<details>") == 1  # the two display-only rows, folded


def test_report_is_self_contained(report: Path):
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate element ids across inline SVGs"


def test_the_ab_section_of_paired_boots_leads_with_the_gated_metrics(boots_report: Path):
    html = boots_report.read_text()
    assert "inconclusive" not in html
    ab = _section(html, "ab")
    assert '<strong>Gate:</strong> <span class="v-failed">failed</span>' in ab
    for badge in ("1 failed", "1 regressed", "5 unchanged"):
        assert f">{badge}</span>" in ab
    assert ("family-wise alpha 0.01 over 6 gated metrics (Bonferroni over metrics and looks); "
            "each interval at 0.9983") in ab
    main, details = ab.split("<details>", 1)
    gated = main[main.index("<table"):main.index("</table>")]
    # the gated family plus the candidate's broken benchmark; display-only metrics apart
    assert gated.count("<tr>") == 1 + 7 and "ops_per_s" not in gated
    assert re.search(r'class="[^"]*v-failed" >failed<', gated)
    assert re.search(r'class="[^"]*v-regressed" >regressed<', gated)
    assert re.search(r'class="[^"]*v-regressed" >\+8\.\d %<', gated)
    shown = details[:details.index("</details>")]
    assert "<details open" not in ab  # collapsed
    assert "2 display-only metric(s)" in shown and shown.count(">ops_per_s (op/s)") == 2
    assert re.search(r'v-regressed" >regressed<', shown)  # ops_per_s mirrors ns_per_op


def test_the_noise_of_every_gated_metric_is_shown(boots_report: Path, boots):
    ab = _section(boots_report.read_text(), "ab")
    noise = ab[ab.index('id="ab-noise"'):]
    noise = noise[noise.index("<table"):noise.index("</table>")]
    for header in ("boots", "rounds", "CV between boots", "CV within a boot", "n eff", "MDE"):
        assert f">{header}<" in noise
    rows = noise.split("<tr>")[2:]
    gated = compare_frames(*boots).query("gated")
    assert len(rows) == len(gated) == 6
    for row in rows:
        cells = re.findall(r" >([^<]*)</td>", row)
        boots_, rounds, between, within, n_eff, mde = (cells[i] for i in (3, 4, 5, 6, 8, 9))
        assert boots_ == f"{ROUNDS}/{ROUNDS}" and rounds == str(ROUNDS)
        assert all(re.fullmatch(r"\d+\.\d %", v) for v in (between, within, mde)), cells
        assert float(n_eff) >= ROUNDS


def test_the_forest_plot_is_labelled_with_the_real_level_and_the_margin(boots_report: Path):
    ab = _section(boots_report.read_text(), "ab")
    caption = ab[ab.index("Change of each gated metric"):]
    caption = caption[:caption.index("</figcaption>")]
    assert "99.83 % interval" in caption and "95 %" not in ab
    assert "-4.76 % … +5.00 %" in caption  # log(1.05) either side of 0, back-transformed
    assert "change, % (99.83 % interval)" in ab  # the axis of the figure


def test_the_boot_dot_plot_pairs_the_rounds(boots, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch):
    from watchbench.report import ab, plots

    drawn: list = []
    original = plots.boots_svg
    monkeypatch.setattr(plots, "boots_svg", lambda panels, **kw: drawn.append(panels)
                        or original(panels, **kw))
    monkeypatch.setattr(ab, "MAX_BOOT_PANELS", 4)
    df, base, cand = boots
    html = write_report(df, tmp_path, baseline=base, candidate=cand).read_text()
    figure = html[html.index('id="ab-boots"'):]
    figure = figure[:figure.index("</figure>")]
    assert "<svg" in figure and "the first 4 of 7 gated or failed metrics" in figure
    assert "A point is one boot's median over its repeats" in figure
    assert "Rounds pair the boots" in figure
    (panels,) = drawn
    assert [p.verdict for p in panels[:2]] == ["failed", "regressed"]  # broken, moving first
    assert len(panels) == 4 and all(p.xlabel == "round" for p in panels)
    failed, regressed = panels[0], panels[1]
    assert len(failed.candidate[1]) == 0 and not failed.pairs  # nothing measured to pair
    assert sorted(regressed.baseline[0]) == list(range(1, ROUNDS + 1))
    assert len(regressed.pairs) == ROUNDS
    for x, ya, yb in regressed.pairs:  # each round: the candidate ~8 % slower
        assert x in regressed.candidate[0] and 1.04 < yb / ya < 1.12
    # without round numbers the boots are in run order and nothing is paired
    drawn.clear()
    unpaired = df.assign(ci_round=pd.NA, ci_id=pd.NA)
    write_report(unpaired, tmp_path / "unpaired", baseline=base, candidate=cand)
    assert all(p.xlabel == "boot" and not p.pairs for p in drawn[0])


def test_the_method_section_describes_the_boot_analysis(boots_report: Path):
    method = _section(boots_report.read_text(), "method")
    for cited in ("Student 1908", "Welch 1947", "Schuirmann 1987", "Kish 1965"):
        assert cited in method
    for term in ("The boot is the unit", "log(1 + threshold)", "unchanged", "regressed",
                 "improved", "undecided", "failed", "fails closed", "Noise floor",
                 "Bonferroni", "spends", "Lan–DeMets"):
        assert term in method, term
    assert "Mann–Whitney" not in method and "inconclusive" not in method


HEADING = re.compile(r"^(failed|regressed|improved|undecided|unchanged): (\d+)$")


def _table_rows(text: str) -> list[str]:
    """The metric lines: after the header rule, up to the blank line, minus the headings."""
    lines = text.splitlines()
    body = lines[2:lines.index("")]
    return [line for line in body if not HEADING.match(line) and "unchanged (" not in line]


def test_compare_table_is_aligned_and_leads_with_failures_and_regressions(boots):
    comparisons = compare_frames(*boots)
    text = compare_table(comparisons, width=120, show_unchanged=True)
    lines = text.splitlines()
    header, rule = lines[0], lines[1]
    assert lines[2] == "failed: 1" and lines[3].startswith("overflow")
    assert lines[4] == "regressed: 2" and lines[5].startswith("keyctl-post")
    headings = [HEADING.match(line).group(1) for line in lines if HEADING.match(line)]
    assert headings == ["failed", "regressed", "unchanged"]
    rows = _table_rows(text)
    assert len(rows) == len(comparisons)
    end = header.index("change") + len("change")
    for line in rows:  # right-aligned column: every value ends where the header does
        assert line[end - 1] in "%–" and line[end] == " ", line
    assert set(rule) <= {"-", " "}
    coloured = compare_table(comparisons, color=True)
    assert "\033[31mregressed: 2" in coloured and "\033[31;1mfailed: 1" in coloured
    assert "\033[" not in text


@pytest.mark.parametrize("width", [60, 72, 80, 100, 140])
def test_compare_table_fits_the_terminal_width(results: pd.DataFrame, width: int):
    comparisons = compare_frames(results, BASE, CAND)
    text = compare_table(comparisons, width=width, show_unchanged=True)
    assert max(map(len, _table_rows(text))) <= max(width, MIN_WIDTH)
    notes = text.splitlines()[text.splitlines().index(""):]
    assert max(map(len, notes)) <= width
    assert len(_table_rows(text)) == len(comparisons)
    assert "(ns, lower is better)" not in text  # the unit is compact: an arrow on the metric
    if width >= 72:  # narrower, the metric names are clipped (their arrows with them)
        assert "ns_per_op↓" in text and "ops_per_s↑" in text
    if width <= 80:  # narrow: only the values of the params that vary, the keys below
        unwrapped = " ".join(line.strip() for line in notes)
        assert "watched  " in text
        assert "keyctl-post: params case; always filter=none" in unwrapped
    else:
        assert "case=watched  " in text


def test_compare_table_drops_params_equal_in_every_row_and_names_them_once(
    results: pd.DataFrame,
):
    text = compare_table(compare_frames(results, BASE, CAND), width=200)
    rows = _table_rows(text)
    keyctl = [row for row in rows if row.startswith("keyctl-post")]
    assert keyctl and all("reader=" not in row and "queues=" not in row for row in keyctl)
    assert "keyctl-post: always filter=none, queues=1, reader=other-cpu" in text


def test_compare_table_collapses_unchanged_metrics_unless_asked(boots):
    comparisons = compare_frames(*boots)
    unchanged = int((comparisons["verdict"] == "unchanged").sum())
    assert unchanged == 6
    short = compare_table(comparisons, width=120)
    assert f"{unchanged} metric(s) unchanged (not listed" in short
    assert len(_table_rows(short)) == len(comparisons) - unchanged
    assert "py-pipe-read " not in "\n".join(_table_rows(short))
    full = compare_table(comparisons, width=120, show_unchanged=True)
    assert "unchanged: 6" in full.splitlines()


def test_compare_table_width_defaults_to_the_terminal(results: pd.DataFrame,
                                                      monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("COLUMNS", "72")
    text = compare_table(compare_frames(results, BASE, CAND), show_unchanged=True)
    assert max(map(len, text.splitlines())) <= 72


def test_compare_markdown_is_a_well_formed_table(boots):
    """Two tables: the gated metrics (with the broken benchmark), then the display-only
    ones folded in <details>, as the HTML report folds them (a job summary shows what
    was decided first)."""
    md = compare_markdown(compare_frames(*boots))
    main, details = md.split("<details>", 1)
    rows = [line for line in md.splitlines() if line.startswith("|")]
    cells = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
    assert len(cells) == 1 and len(rows) == (2 + 7) + (2 + 2)  # all 9 metrics, 2 tables
    assert "1 failed, 1 regressed, 5 unchanged" in main  # the verdicts of the gated family
    assert "⛔ failed" in main and "⛔ failed" not in details  # broken: never folded away
    assert "2 display-only metric(s)" in details and details.count(", display only |") == 2
    assert details.rstrip().endswith("</details>") and "<summary>" in details


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
    assert "across boots, after each patch" in html
    assert "watch_queue: step 2" in html
    assert "A/B comparison</h2>" not in html
    empty = patched.iloc[0:0]
    with pytest.raises(Exception, match="no results"):
        write_report(empty, tmp_path, baseline=None, candidate=None)


def _history(results: pd.DataFrame, entries: int = 10, step_at: int = 5,
             step: float = 0.15) -> pd.DataFrame:
    """The candidate run recorded ``entries`` times; from ``step_at`` on it is slower."""
    rng = np.random.default_rng(0)
    frames = []
    for i in range(entries):
        part = results[results["run_id"] == "sample-candidate"].copy()
        part["run_id"] = f"hist-{i}"
        part["history_index"] = i
        factor = (1 + step if i >= step_at else 1.0) * rng.normal(1, 0.004)
        slower = part["metric"].astype("string").str.startswith("ns_per").fillna(False)
        part.loc[slower, "value"] = part.loc[slower, "value"] * factor
        frames.append(part)
    return pd.concat(frames, ignore_index=True)


def test_report_shows_the_history_trend_with_change_points(results: pd.DataFrame,
                                                           tmp_path: Path):
    history = _history(results)
    html = write_report(results, tmp_path, baseline=BASE, candidate=CAND,
                        history=history).read_text()
    assert 'id="history"' in html and "10 recorded entries" in html
    assert "keyctl-post: ns_per_op per history entry · 2 change point(s)" in html
    # the annotations on the figures and the table rows (15 % and the entries' noise)
    assert len(re.findall(r"\+15\.[01] %", html)) >= 2 * 6
    assert "stroke-dasharray" in html  # the dashed change-point lines
    md = (tmp_path / "summary.md").read_text()
    assert "## Change points in the history" in md
    rows = [line for line in md.splitlines() if line.startswith("| keyctl-post")
            and re.search(r"\| 5 \| regressed \| \+15\.[01] %", line)]
    assert len(rows) == 2  # case=watched and case=unwatched, ns_per_op, at entry 5


def test_a_flat_history_has_no_change_points_and_no_history_means_no_section(
    results: pd.DataFrame, tmp_path: Path
):
    write_report(results, tmp_path / "flat", baseline=None, candidate=None,
                 history=_history(results, step=0.0))
    md = (tmp_path / "flat" / "summary.md").read_text()
    assert "No level shift in the headline metrics over 10 recorded entries." in md
    html = write_report(results, tmp_path / "none", baseline=None, candidate=None).read_text()
    assert 'id="history"' not in html
    assert "Change points" not in (tmp_path / "none" / "summary.md").read_text()


def _ci_per_patch(results: pd.DataFrame, rounds: int = 4) -> pd.DataFrame:
    """CI-style per-patch runs: a baseline without the series (patch 0), patches 1..3 of
    "notif", each booted ``rounds`` times (paired by ``ci_round``: a step needs two boots
    per patch to be decided); patch 2 makes every ns_per_* metric 10 % slower."""
    rng = np.random.default_rng(1)
    frames = []
    for index in range(4):
        for r in range(rounds):
            part = results[results["run_id"] == "sample-candidate"].copy()
            part = part.astype({"series_name": "string", "ci_role": "string",
                                "run_id": "string", "ci_id": "string"})
            part["run_id"] = f"ci-{index}-{r}"
            part["ci_id"], part["ci_round"] = "ci-patches", r
            part["patch_index"] = index
            part["patch_subject"] = f"watch_queue: step {index}" if index else ""
            part["series_name"] = "notif" if index else ""
            part["series_hash"] = f"s{index}"
            part["ci_role"] = "patch" if index else "baseline"
            slower = part["metric"].astype("string").str.startswith("ns_per").fillna(False)
            factor = np.where(slower.to_numpy(bool) & (index >= 2), 1.10, 1.0)
            boot = np.exp(rng.normal(0, 0.002))
            part["value"] = part["value"] * factor * boot * rng.normal(1, 0.002, len(part))
            frames.append(part)
    return pd.concat(frames, ignore_index=True)


def test_per_patch_charts_share_the_baseline_and_draw_a_waterfall(
    results: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from watchbench.report import plots

    drawn: list[dict] = []
    original = plots.patch_svg

    def spy(lines, ticks, **kw):
        drawn.append(lines)
        return original(lines, ticks, **kw)

    monkeypatch.setattr(plots, "patch_svg", spy)
    html = write_report(_ci_per_patch(results), tmp_path, baseline=None,
                        candidate=None).read_text()
    assert "change vs baseline after each patch (waterfall)" in html
    assert "watch_queue: step 2" in html
    assert drawn and all(set(line[0]) == {0.0, 1.0, 2.0, 3.0}  # baseline on every line
                         for lines in drawn for line in lines.values())
    assert all(label.startswith("notif · ") for lines in drawn for label in lines)
    # patch 2's step is decided (four paired boots per patch) and coloured as a regression
    start = html.index("ns_per_op: change vs baseline after each patch (waterfall)")
    waterfall = html[start:html.index("</figure>", start)]
    assert plots.VERDICT_COLOURS["regressed"] in waterfall


# --- headless Chromium ------------------------------------------------------------------

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


@needs_chromium
def test_the_report_of_paired_boots_fits_a_1400_px_window(boots_report: Path, tmp_path: Path):
    assert console_problems(boots_report, tmp_path) == []
    assert too_wide(boots_report, tmp_path, 1400) == []
