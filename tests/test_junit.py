"""JUnit XML of A/B verdicts: parsed back, counted, and read for the numbers CI shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from watchbench.junit import junit_xml, write_junit
from watchbench.stats import compare_frames


def _side(run_id: str, groups: dict[tuple[str, str, str], np.ndarray]) -> pd.DataFrame:
    parts = []
    for (benchmark, params, metric), values in groups.items():
        parts.append(pd.DataFrame({"benchmark": benchmark, "params": params, "metric": metric,
                                   "value": values}))
    df = pd.concat(parts, ignore_index=True)
    return df.assign(run_id=run_id, unit="ns", direction="lower", accel="tcg", status="ok",
                     reason="")


def comparisons() -> pd.DataFrame:
    """One regressed, one improved, one unchanged, one inconclusive (too few samples)."""
    rng = np.random.default_rng(1)

    def noise(level: float, n: int = 40) -> np.ndarray:
        return rng.normal(level, 1.0, n)

    base = _side("a", {("keyctl-post", "case=watched", "ns_per_op"): noise(100),
                       ("keyctl-post", "case=unwatched", "ns_per_op"): noise(100),
                       ("pipe-read", "", "ns_per_record"): noise(100),
                       ("overflow", "queue_size=16", "ns_per_op"): noise(100, 3)})
    cand = _side("b", {("keyctl-post", "case=watched", "ns_per_op"): noise(112),
                       ("keyctl-post", "case=unwatched", "ns_per_op"): noise(90),
                       ("pipe-read", "", "ns_per_record"): noise(100),
                       ("overflow", "queue_size=16", "ns_per_op"): noise(100, 3)})
    out = compare_frames(pd.concat([base, cand], ignore_index=True), ["a"], ["b"])
    verdicts = dict(zip(out["benchmark"] + "/" + out["params"], out["verdict"], strict=True))
    assert verdicts == {"keyctl-post/case=watched": "regressed",
                        "keyctl-post/case=unwatched": "improved", "pipe-read/": "unchanged",
                        "overflow/queue_size=16": "inconclusive"}
    return out


def test_junit_counts_and_verdicts_parse_back():
    root = ET.fromstring(junit_xml(comparisons(), suite_name="wb-ci"))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for element in (root, suite):
        assert element.get("name") == "wb-ci"
        assert (element.get("tests"), element.get("failures"), element.get("skipped"),
                element.get("errors")) == ("4", "1", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == ["keyctl-post", "keyctl-post", "overflow",
                                                   "pipe-read"]  # regressions first
    assert cases[0].get("name") == "case=watched · ns_per_op"
    assert cases[3].get("name") == "– · ns_per_record"
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert len(names) == 4


def test_a_regression_is_a_failure_with_change_ci_p_and_threshold():
    root = ET.fromstring(junit_xml(comparisons()))
    failures = root.findall(".//testcase/failure")
    assert len(failures) == 1
    message = failures[0].get("message")
    assert message.startswith("regressed +1")
    assert "95% CI [+" in message and "p=<0.0001" in message and "threshold 2%" in message
    assert "baseline median" in failures[0].text
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props == {"threshold": "0.02", "alpha": "0.01", "confidence": "0.95",
                     "baseline_runs": "a", "candidate_runs": "b"}


def test_inconclusive_is_skipped_with_its_reason_and_passes_carry_their_figures():
    root = ET.fromstring(junit_xml(comparisons()))
    by_class = {c.get("classname") + c.get("name"): c for c in root.iter("testcase")}
    skipped = by_class["overflowqueue_size=16 · ns_per_op"].find("skipped")
    assert skipped.get("message") == ("inconclusive: too few samples to reach the "
                                      "significance level")
    unchanged = by_class["pipe-read– · ns_per_record"]
    assert unchanged.find("failure") is None and unchanged.find("skipped") is None
    assert "verdict: unchanged" in unchanged.find("system-out").text
    improved = by_class["keyctl-postcase=unwatched · ns_per_op"]
    assert "change: -9.8 %" in improved.find("system-out").text


def test_write_junit_writes_a_file_and_strips_characters_xml_cannot_hold(tmp_path: Path):
    table = comparisons()
    table.loc[table["verdict"] == "inconclusive", "reason"] = "guest said \x07 ENOPKG"
    path = write_junit(table, tmp_path / "out" / "junit.xml")
    root = ET.parse(path).getroot()
    skipped = root.find(".//skipped")
    assert skipped.get("message") == "inconclusive: guest said ? ENOPKG"


def test_an_empty_comparison_is_an_empty_suite():
    empty = comparisons().iloc[0:0]
    root = ET.fromstring(junit_xml(empty))
    assert root.get("tests") == "0" and root.find("testsuite").findall("testcase") == []
