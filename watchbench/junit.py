"""A/B verdicts as JUnit XML, so CI systems show a regression as a failed test.

GitHub (test-reporter actions) and GitLab (``artifacts:reports:junit``) read the common
subset written here: ``testsuites > testsuite > testcase`` with ``failure`` and ``skipped``
children and the counts on both parents. One test case per compared metric: a regression
fails, an inconclusive comparison is skipped with its reason, the rest pass and carry their
figures in ``system-out``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from watchbench.report.text import fmt_change, fmt_ci, fmt_mde, fmt_p, fmt_value, ordered

# XML 1.0 cannot carry most control characters, not even escaped; a reason string from a
# guest's stderr could hold one and make the whole file unreadable to the CI.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("?", "" if value is None else str(value))


def case_name(params: str, metric: str) -> str:
    """``params · metric`` (``–`` for no params): unique within a benchmark."""
    return f"{params or '–'} · {metric}"


def _pct(fraction: float) -> str:
    return f"{fraction:.0%}" if math.isfinite(fraction) else "–"


def _figures(r: pd.Series, threshold: float) -> str:
    """The numbers behind a verdict, one per line, for the message and system-out."""
    return "\n".join([
        f"verdict: {r['verdict']} ({r['reason']})",
        f"metric: {r['metric']} ({r['unit']}, {r['direction']} is better), accel {r['accel']}",
        f"baseline median: {fmt_value(r['median_a'])} (n={r['n_a']})",
        f"candidate median: {fmt_value(r['median_b'])} (n={r['n_b']})",
        f"change: {fmt_change(r['change'])}, 95% CI {fmt_ci(r['ci_low'], r['ci_high'])}",
        f"p: {fmt_p(r['p_value'])} (Mann-Whitney U), threshold {_pct(threshold)}",
        f"MDE: {fmt_mde(r['mde'])}",
    ])


def _failure_message(r: pd.Series, threshold: float) -> str:
    return (f"regressed {fmt_change(r['change'])} (95% CI {fmt_ci(r['ci_low'], r['ci_high'])}, "
            f"p={fmt_p(r['p_value'])}, threshold {_pct(threshold)}): "
            f"{r['metric']} {fmt_value(r['median_a'])} -> {fmt_value(r['median_b'])} {r['unit']}")


def junit_xml(comparisons: pd.DataFrame, suite_name: str = "watchbench") -> str:
    """The rows of ``stats.compare_frames`` as a JUnit XML document (a string).

    classname is the benchmark, name is ``params · metric``. Rows come regressions first,
    like the terminal table.
    """
    attrs = comparisons.attrs
    threshold = float(attrs.get("threshold", math.nan))
    rows = ordered(comparisons) if len(comparisons) else comparisons
    counts = rows["verdict"].value_counts() if len(rows) else pd.Series(dtype=int)
    totals = {"tests": str(len(rows)), "failures": str(int(counts.get("regressed", 0))),
              "errors": "0", "skipped": str(int(counts.get("inconclusive", 0))), "time": "0"}
    root = ET.Element("testsuites", {"name": _text(suite_name), **totals})
    suite = ET.SubElement(root, "testsuite", {"name": _text(suite_name), **totals})
    props = ET.SubElement(suite, "properties")
    for key in ("threshold", "alpha", "confidence"):
        if key in attrs:
            ET.SubElement(props, "property", name=key, value=f"{attrs[key]:g}")
    for key in ("baseline", "candidate"):
        if key in attrs:
            ET.SubElement(props, "property", name=f"{key}_runs", value=_text(",".join(attrs[key])))
    for _, r in rows.iterrows():
        case = ET.SubElement(suite, "testcase", {
            "classname": _text(r["benchmark"]),
            "name": _text(case_name(r["params"], r["metric"])),
            "time": "0",
        })
        figures = _text(_figures(r, threshold))
        if r["verdict"] == "regressed":
            failure = ET.SubElement(case, "failure", message=_text(_failure_message(r, threshold)),
                                    type="performance-regression")
            failure.text = figures
        elif r["verdict"] == "inconclusive":
            ET.SubElement(case, "skipped", message=_text(f"inconclusive: {r['reason']}"))
            ET.SubElement(case, "system-out").text = figures
        else:
            ET.SubElement(case, "system-out").text = figures
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(comparisons: pd.DataFrame, path: Path, suite_name: str = "watchbench") -> Path:
    """Write ``junit_xml`` to ``path`` (parents created); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(junit_xml(comparisons, suite_name), encoding="utf-8")
    return path
