"""JUnit XML of A/B verdicts: parsed back, counted, and read for the numbers CI shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from watchbench.report.junit import junit_xml, write_junit
from watchbench.stats.compare import compare_frames


def comparisons() -> pd.DataFrame:
    """Gated: one regressed, one improved, one unchanged, one undecided (noisy); plus a
    display-only rate that JUnit leaves out."""
    from tests.boots import boots_frame, runs

    watched, unwatched = ("keyctl-post", "case=watched", "ns_per_op"), (
        "keyctl-post", "case=unwatched", "ns_per_op")
    read, rate = ("pipe-read", "", "ns_per_record"), ("pipe-read", "", "records_per_s")
    quiet = boots_frame({"a": {watched: 100, unwatched: 100, read: 100, rate: 1e7},
                         "b": {watched: 112, unwatched: 90, read: 100, rate: 1e7}},
                        boot_cv=0.003)
    noisy_key = ("overflow", "queue_size=16", "ns_per_op")
    noisy = boots_frame({"a": {noisy_key: 100}, "b": {noisy_key: 100}}, boot_cv=0.3, seed=2)
    out = compare_frames(pd.concat([quiet, noisy], ignore_index=True), runs(quiet, "a"),
                         runs(quiet, "b"))
    gated = out[out["gated"]]
    verdicts = dict(zip(gated["benchmark"] + "/" + gated["params"], gated["verdict"],
                        strict=True))
    assert verdicts == {"keyctl-post/case=watched": "regressed",
                        "keyctl-post/case=unwatched": "improved", "pipe-read/": "unchanged",
                        "overflow/queue_size=16": "undecided"}
    assert not out.set_index("metric").loc["records_per_s", "gated"]
    return out


def test_junit_counts_and_verdicts_parse_back():
    root = ET.fromstring(junit_xml(comparisons(), suite_name="wb-ci"))
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for element in (root, suite):
        assert element.get("name") == "wb-ci"
        assert (element.get("tests"), element.get("failures"), element.get("skipped"),
                element.get("errors")) == ("4", "2", "0", "0")  # undecided fails the gate
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == ["keyctl-post", "keyctl-post", "overflow",
                                                   "pipe-read"]  # regressions first
    assert cases[0].get("name") == "case=watched · ns_per_op"
    assert cases[3].get("name") == "– · ns_per_record"
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert len(names) == 4


def test_a_regression_is_a_failure_with_change_ci_p_and_threshold():
    root = ET.fromstring(junit_xml(comparisons()))
    failures = [f for f in root.findall(".//testcase/failure")
                if f.get("type") == "performance-regression"]
    assert len(failures) == 1
    message = failures[0].get("message")
    assert message.startswith("regressed +1")
    assert "0.9975 CI [+" in message and "p=<0.0001" in message and "threshold 5%" in message
    assert "baseline: " in failures[0].text and "5 boots" in failures[0].text
    assert "between-boot CV" in failures[0].text
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    runs_a = ",".join(f"a-{i}" for i in range(5))
    assert props == {"threshold": "0.05", "alpha": "0.01", "family": "4", "level": "0.0025",
                     "baseline_runs": runs_a, "candidate_runs": runs_a.replace("a", "b")}


def test_undecided_fails_unless_accepted_and_passes_carry_their_figures():
    root = ET.fromstring(junit_xml(comparisons()))
    by_class = {c.get("classname") + c.get("name"): c for c in root.iter("testcase")}
    undecided = by_class["overflowqueue_size=16 · ns_per_op"].find("failure")
    assert undecided.get("type") == "undecided"
    assert undecided.get("message").startswith("undecided: 0.9975 CI")
    accepted = ET.fromstring(junit_xml(comparisons(), accept_undecided=True))
    assert accepted.find("testsuite").get("skipped") == "1"
    unchanged = by_class["pipe-read– · ns_per_record"]
    assert unchanged.find("failure") is None and unchanged.find("skipped") is None
    assert "verdict: unchanged" in unchanged.find("system-out").text
    improved = by_class["keyctl-postcase=unwatched · ns_per_op"]
    assert "change: -9.9 %" in improved.find("system-out").text


def test_write_junit_writes_a_file_and_strips_characters_xml_cannot_hold(tmp_path: Path):
    table = comparisons()
    table.loc[table["verdict"] == "undecided", "reason"] = "guest said \x07 ENOPKG"
    path = write_junit(table, tmp_path / "out" / "junit.xml", accept_undecided=True)
    root = ET.parse(path).getroot()
    skipped = root.find(".//skipped")
    assert skipped.get("message") == "undecided (accepted): guest said ? ENOPKG"


def test_an_empty_comparison_is_an_empty_suite():
    empty = comparisons().iloc[0:0]
    root = ET.fromstring(junit_xml(empty))
    assert root.get("tests") == "0" and root.find("testsuite").findall("testcase") == []
