"""The correctness check's verdict for people and CI: terminal lines, Markdown, JUnit.

One part per step (``suite.check.judge``); a finding names the step and the test and
carries its evidence (the test's diagnostics, or the kernel's splat from the console),
its stack trace decoded to file:line where it could be (kernel.decode), else the raw
trace and one line saying why.
"""

from __future__ import annotations

import re
import textwrap
import xml.etree.ElementTree as ET

from watchbench.report.junit import xml_text
from watchbench.results.ktap import Outcome, Part
from watchbench.suite.check import Finding, FindingKind
from watchbench.vm import console

WIDTH = 79
# Stack frames that only say a report is being printed, and unreliable ('? ') frames:
# left out of the terminal's excerpt so the frames that matter fit (the files keep all).
# A frame is raw (name+0x1a/0x20) or decoded (name (file.c:12)).
REPORTING = re.compile(r"^\s*(\? |<TASK>|(dump_stack\w*|print_report|kasan_report|"
                       r"__asan_\w+|kasan_\w+|lockdep_rcu_suspicious)(\+0x| \()|hex dump|"
                       r"([0-9a-f]{2} ){15}[0-9a-f]{2}\b)")
# What decoding changes in a line: the offsets go, file:line (and inlined callers) come.
FRAME_PARTS = re.compile(r"\+0x[0-9a-f]+/0x[0-9a-f]+| \([^()]*:\d+[^()]*\)|\s+")
# A decoded frame: its file:line is the point, so a long one is wrapped, not cut.
DECODED_FRAME = re.compile(r"\S \([^()\s]+:\d+")
DECODED_BY = "decoded by the tree's scripts/decode_stacktrace.sh"
EVIDENCE_LINES = 8  # of a finding's evidence shown in the terminal (all of it in the files)
FINDINGS_PER_STEP = 3  # shown in the terminal; the rest are counted


def _tally(parts: list[Part]) -> str:
    counts = {o: sum(p.outcome is o for p in parts) for o in Outcome}
    return (f"{len(parts)} steps: {counts[Outcome.PASS]} passed, {counts[Outcome.FAIL]} "
            f"failed, {counts[Outcome.SKIP]} skipped")


def verdict_line(parts: list[Part], findings: list[Finding], code: int, accel: str) -> str:
    """One sentence: the answer, the steps, the number of findings."""
    word = "PASS" if not findings else "CORRECTNESS FAILURE"
    found = (f"; {len(findings)} finding{'s' if len(findings) > 1 else ''}" if findings
             else "")
    return f"{word} (exit {code}): {_tally(parts)}{found}; debug kernel, {accel}"


def _cases(part: Part) -> str:
    report = part.report
    if part.outcome is Outcome.SKIP:
        return "skipped"
    if not report.cases:
        return "no results"
    failed = len(report.failed)
    return f"{len(report.cases) - failed}/{len(report.cases)} ok"


def _step_rows(parts: list[Part], seconds: dict[str, float | None],
               findings: list[Finding]) -> list[str]:
    """A row per step; a step whose tests all passed but whose kernel splatted says so,
    or 'FAIL 43/43 ok' would read as a contradiction."""
    rows = []
    for part in parts:
        took = seconds.get(part.name)
        word = {Outcome.PASS: "ok", Outcome.FAIL: "FAIL", Outcome.SKIP: "skip"}[part.outcome]
        splats = sum(f.count for f in findings
                     if f.step == part.name and f.kind is FindingKind.SPLAT)
        row = (f"  {part.name:<15} {word:<5} {_cases(part):<12} "
               f"{f'{took:.0f} s' if took is not None else '':>6}")
        if splats:
            row += f"  + {splats:,} kernel splat{'s' if splats > 1 else ''}"
        rows.append(row.rstrip())
        if part.outcome is Outcome.SKIP and part.reasons:
            rows += textwrap.wrap(part.reasons[0], WIDTH, initial_indent="      ",
                                  subsequent_indent="      ")
    return rows


def _bare(text: str) -> str:
    """A line as raw and decoded traces both print it: no offsets, no file:line, no
    runs of spaces (the decoder joins words with one)."""
    return FRAME_PARTS.sub(" ", text).strip()


def _evidence(finding: Finding) -> list[str]:
    """The evidence as the terminal shows it, decoded where it could be: a splat from its
    own line on (the excerpt starts before it), without the console's timestamps, which
    take a fifth of the width."""
    text = finding.decoded or finding.evidence
    lines = [console.strip_timestamp(ln) for ln in text.splitlines()]
    lines = [ln for ln in lines if ln.strip() and not REPORTING.match(ln)]
    head = _bare(finding.what.split(": ", 1)[-1])
    start = next((i for i, ln in enumerate(lines) if _bare(ln) and _bare(ln) in head), 0)
    return lines[start:]


def trace_text(finding: Finding) -> str:
    """A finding's evidence as the files keep it: decoded, then the raw trace it came
    from (offsets are what syzbot and a bisect match on); or raw with why not decoded."""
    if finding.decoded:
        return f"{finding.decoded}\n\n--- raw ---\n{finding.evidence}"
    if finding.not_decoded:
        return f"trace not decoded: {finding.not_decoded}\n\n{finding.evidence}"
    return finding.evidence


def _finding_lines(finding: Finding, quoted: set[str]) -> list[str]:
    """A finding's line and, for the first splat of its step and for a failed test, its
    evidence cut short (``quoted``: the steps whose splat was shown)."""
    out = textwrap.wrap(finding.line(), WIDTH, initial_indent="  ", subsequent_indent="      ")
    if finding.kind is FindingKind.SPLAT:
        if finding.step in quoted:
            return out  # most often the first one's consequence; all are in the files
        quoted.add(finding.step)
    evidence = _evidence(finding)
    for text in evidence[:EVIDENCE_LINES]:
        if DECODED_FRAME.search(text) and len(text) + 6 > WIDTH:
            out += textwrap.wrap(text, WIDTH, initial_indent="    | ",
                                 subsequent_indent="    |     ")
        else:
            out.append(("    | " + text)[:WIDTH])
    if len(evidence) > EVIDENCE_LINES:
        out.append(f"    | ... {len(evidence) - EVIDENCE_LINES} more lines "
                   "(summary.md, junit.xml)")
    if finding.not_decoded and evidence:
        out.append(_cut(f"    (raw trace: not decoded: {finding.not_decoded})"))
    return out


def _cut(text: str) -> str:
    return text if len(text) <= WIDTH else text[:WIDTH - 4] + "...)"


def terminal_lines(line: str, parts: list[Part], findings: list[Finding],
                   seconds: dict[str, float | None], files: dict[str, str]) -> list[str]:
    """The check as the terminal shows it: the steps, the findings (at most three a step,
    the rest counted; the first splat of a step and every failed test with their evidence
    cut short; the steps never run as one line), where the files are, and the verdict last
    (80 columns)."""
    out = ["step            result cases         time", *_step_rows(parts, seconds, findings)]
    never = [f for f in findings if f.kind is FindingKind.NOT_RUN]
    shown = [f for f in findings if f not in never]
    if findings:
        out += ["", "findings:"]
    quoted: set[str] = set()
    for step in dict.fromkeys(f.step for f in shown):
        mine = [f for f in shown if f.step == step]
        for finding in mine[:FINDINGS_PER_STEP]:
            out += _finding_lines(finding, quoted)
        if len(mine) > FINDINGS_PER_STEP:
            more = len(mine) - FINDINGS_PER_STEP
            out.append(f"  {step}: {more} more finding{'s' if more > 1 else ''} "
                       "(summary.md, junit.xml)")
    if never:
        why = never[0].what.removeprefix("not run: ")
        out += textwrap.wrap(f"not run: {', '.join(f.step for f in never)}: {why}", WIDTH,
                             initial_indent="  ", subsequent_indent="      ")
    out.append("")
    out += [f"{name + ':':<9}{path}" for name, path in files.items()]
    out += textwrap.wrap("watchbench check: " + line, WIDTH, subsequent_indent="  ")
    return out


def markdown(line: str, parts: list[Part], findings: list[Finding],
             provenance: dict[str, object]) -> str:
    """summary.md: the verdict, one row per step, each finding with all its evidence, and
    what was checked (kernel, series, config, accelerator, host)."""
    out = [f"## watchbench check: {line}", "", "| step | result | cases | why |",
           "| --- | --- | --- | --- |"]
    for part in parts:
        why = "; ".join(part.reasons).replace("|", "\\|")
        out.append(f"| {part.name} | {part.outcome} | {_cases(part)} | {why} |")
    for finding in findings:
        out += ["", f"### {finding.line()}"]
        if finding.decoded:
            out += ["", f"Stack trace {DECODED_BY}:", "", "```", finding.decoded, "```", "",
                    "<details><summary>raw trace</summary>", "", "```", finding.evidence,
                    "```", "", "</details>"]
        elif finding.evidence:
            if finding.not_decoded:
                out += ["", f"Raw trace, not decoded: {finding.not_decoded}."]
            out += ["", "```", finding.evidence, "```"]
    out += ["", "### What was checked", ""]
    for key in ("kernel_version", "base_label", "tree_base", "series_name", "series_hash",
                "config_hash", "accel", "measures", "qemu_version", "host", "console_log"):
        out.append(f"- {key}: `{provenance.get(key)}`")
    return "\n".join(out) + "\n"


def _finding_case(suite: ET.Element, classname: str, name: str, finding: Finding) -> None:
    """A failed test case of its own for a finding that is no KTAP result: a kernel splat,
    or a step that broke or never ran."""
    kind = "kernel-splat" if finding.kind is FindingKind.SPLAT else "step-broken"
    node = ET.SubElement(suite, "testcase", {"classname": classname, "name": xml_text(name),
                                             "time": "0"})
    failure = ET.SubElement(node, "failure", {"message": xml_text(finding.described()),
                                              "type": kind})
    failure.text = xml_text(trace_text(finding))


def junit_xml(parts: list[Part], findings: list[Finding], kernel: str) -> str:
    """One test suite per step, one test case per KTAP result; a kernel splat or a step
    that did not finish is a failed case of its own (``kernel``, ``step``)."""
    cases_total = failures_total = skipped_total = 0
    root = ET.Element("testsuites", {"name": f"watchbench check {kernel}"})
    for part in parts:
        suite = ET.SubElement(root, "testsuite", {"name": part.name})
        mine = [f for f in findings if f.step == part.name]
        cases, failures, skipped = 0, 0, 0
        for case in part.report.cases:
            cases += 1
            node = ET.SubElement(suite, "testcase", {"classname": part.name,
                                                     "name": xml_text(case.name), "time": "0"})
            own = [f for f in mine if f.test == case.name and f.kind is FindingKind.FAILED_TEST]
            if own or case.outcome is Outcome.FAIL:
                failures += 1
                failure = ET.SubElement(node, "failure", {"message": "not ok",
                                                          "type": "test-failed"})
                traced = [f for f in own if f.decoded or f.not_decoded]
                failure.text = xml_text(trace_text(traced[0]) if traced
                                        else "\n".join(case.diagnostics))
            elif case.outcome is Outcome.SKIP:
                skipped += 1
                ET.SubElement(node, "skipped", {"message": xml_text(case.note)})
        for finding in mine:
            if finding.kind is FindingKind.FAILED_TEST:
                continue  # the KTAP case above
            cases += 1
            failures += 1
            kind = "kernel-splat" if finding.kind is FindingKind.SPLAT else "step-broken"
            _finding_case(suite, part.name, f"{finding.test}: {kind}", finding)
        if part.outcome is Outcome.SKIP and not part.report.cases:
            cases += 1
            skipped += 1
            node = ET.SubElement(suite, "testcase", {"classname": part.name,
                                                     "name": part.name, "time": "0"})
            ET.SubElement(node, "skipped", {"message": xml_text("; ".join(part.reasons))})
        suite.attrib.update(tests=str(cases), failures=str(failures), errors="0",
                            skipped=str(skipped), time="0")
        cases_total, failures_total = cases_total + cases, failures_total + failures
        skipped_total += skipped
    boot = [f for f in findings if f.step == "boot"]
    if boot:
        suite = ET.SubElement(root, "testsuite", {"name": "boot", "tests": str(len(boot)),
                                                  "failures": str(len(boot)), "errors": "0",
                                                  "skipped": "0", "time": "0"})
        for finding in boot:
            _finding_case(suite, "boot", "kernel-splat", finding)
        cases_total, failures_total = cases_total + len(boot), failures_total + len(boot)
    root.attrib.update(tests=str(cases_total), failures=str(failures_total), errors="0",
                       skipped=str(skipped_total), time="0")
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"
