"""A/B verdicts as JUnit XML, so CI systems show a regression as a failed test.

GitHub (test-reporter actions) and GitLab (``artifacts:reports:junit``) read the common
subset written here: ``testsuites > testsuite > testcase`` with ``failure`` and ``skipped``
children and the counts on both parents. One test case per gated metric (and per metric
of a benchmark that broke on the candidate); display-only metrics are left out, they
repeat a gated measurement. The mapping follows the exit code: regressed and failed are
failures (types ``performance-regression`` and ``benchmark-broken``), undecided is a
failure of type ``undecided`` (skipped with ``accept_undecided``), unchanged and improved
pass; each case carries its figures in ``system-out``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from watchbench.host.files import write_atomically
from watchbench.report.text import fmt_change, fmt_ci, fmt_mde, fmt_p, fmt_value, ordered

# XML 1.0 cannot carry most control characters, not even escaped; a reason string from a
# guest's stderr could hold one and make the whole file unreadable to the CI.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    return _NOT_XML.sub("?", "" if value is None else str(value))


def case_name(params: str, metric: str) -> str:
    """``params · metric`` (``–`` for no params): unique within a benchmark."""
    return f"{params or '–'} · {metric}"


def _pct(fraction: float) -> str:
    return f"{fraction:.0%}" if math.isfinite(fraction) else "–"


def _level(r: pd.Series) -> str:
    level = r["level"]
    return f"{1 - level:.4g}" if isinstance(level, float) and math.isfinite(level) else "–"


def _figures(r: pd.Series, threshold: float) -> str:
    """The numbers behind a verdict, one per line, for the message and system-out."""
    return "\n".join([
        f"verdict: {r['verdict']} ({r['reason']})",
        f"metric: {r['metric']} ({r['unit']}, {r['direction']} is better), accel {r['accel']}",
        f"baseline: {fmt_value(r['median_a'])} ({r['n_a']} boots)",
        f"candidate: {fmt_value(r['median_b'])} ({r['n_b']} boots)",
        f"change: {fmt_change(r['change'])}, {_level(r)} CI {fmt_ci(r['ci_low'], r['ci_high'])}"
        f" over {r['rounds']} {'paired rounds' if r['paired'] else 'boots'}",
        f"p (adjusted to the family alpha): {fmt_p(r['p_adjusted'])}, "
        f"threshold {_pct(threshold)}",
        f"noise: between-boot CV {fmt_mde(r['between_cv'])}, within-boot CV "
        f"{fmt_mde(r['within_cv'])}, effective n {r['n_eff']:.1f}, MDE {fmt_mde(r['mde'])}",
    ])


def _failure_message(r: pd.Series, threshold: float) -> str:
    if r["verdict"] == "failed":
        return f"benchmark broke on the candidate: {r['reason']}"
    if r["verdict"] == "undecided":
        return f"undecided: {r['reason']}"
    return (f"regressed {fmt_change(r['change'])} ({_level(r)} CI "
            f"{fmt_ci(r['ci_low'], r['ci_high'])}, p={fmt_p(r['p_adjusted'])}, threshold "
            f"{_pct(threshold)}): {r['metric']} {fmt_value(r['median_a'])} -> "
            f"{fmt_value(r['median_b'])} {r['unit']}")


_FAILURE_TYPES = {"regressed": "performance-regression", "failed": "benchmark-broken",
                  "undecided": "undecided"}


def junit_xml(comparisons: pd.DataFrame, suite_name: str = "watchbench",
              accept_undecided: bool = False) -> str:
    """The gated (and failed) rows of ``stats.compare_frames`` as a JUnit XML document.

    classname is the benchmark, name is ``params · metric``. Rows come regressions first,
    like the terminal table.
    """
    attrs = comparisons.attrs
    threshold = float(attrs.get("threshold", math.nan))
    if len(comparisons):
        comparisons = comparisons[comparisons["gated"].astype(bool)
                                  | (comparisons["verdict"] == "failed")]
    rows = ordered(comparisons) if len(comparisons) else comparisons
    failing = {"regressed", "failed"} | (set() if accept_undecided else {"undecided"})
    verdicts = list(rows["verdict"]) if len(rows) else []
    totals = {"tests": str(len(rows)), "failures": str(sum(v in failing for v in verdicts)),
              "errors": "0", "skipped": str(sum(v == "undecided" and v not in failing
                                                for v in verdicts)),
              "time": "0"}
    root = ET.Element("testsuites", {"name": xml_text(suite_name), **totals})
    suite = ET.SubElement(root, "testsuite", {"name": xml_text(suite_name), **totals})
    props = ET.SubElement(suite, "properties")
    for key in ("threshold", "alpha", "family", "level"):
        if key in attrs:
            ET.SubElement(props, "property", name=key, value=f"{attrs[key]:g}")
    for key in ("baseline", "candidate"):
        if key in attrs:
            ET.SubElement(props, "property", name=f"{key}_runs", value=xml_text(",".join(attrs[key])))
    for _, r in rows.iterrows():
        case = ET.SubElement(suite, "testcase", {
            "classname": xml_text(r["benchmark"]),
            "name": xml_text(case_name(r["params"], r["metric"])),
            "time": "0",
        })
        figures = xml_text(_figures(r, threshold))
        if r["verdict"] in failing:
            failure = ET.SubElement(case, "failure", message=xml_text(_failure_message(r, threshold)),
                                    type=_FAILURE_TYPES[r["verdict"]])
            failure.text = figures
        elif r["verdict"] == "undecided":
            ET.SubElement(case, "skipped", message=xml_text(f"undecided (accepted): {r['reason']}"))
            ET.SubElement(case, "system-out").text = figures
        else:
            ET.SubElement(case, "system-out").text = figures
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(comparisons: pd.DataFrame, path: Path, suite_name: str = "watchbench",
                accept_undecided: bool = False) -> Path:
    """Write ``junit_xml`` to ``path`` (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, junit_xml(comparisons, suite_name, accept_undecided))
