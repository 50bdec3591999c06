"""Headless Chromium for the report tests: console errors, screenshots, widths."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from watchbench.host.runner import default_runner

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


# Injected into a copy of the page: lists the elements of the main column wider than their
# box (a table scrolling sideways, a figure cut off) once the page has laid out.
WIDTHS = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  var wide = [];
  var boxes = window.__wbScrollOk ? "main figure, main > p, main details, main .cards"
                                  : "main .scroll, main figure, main > p, main details";
  document.querySelectorAll(boxes).forEach(
    function (e) {
      if (e.scrollWidth > e.clientWidth + 1) {
        var table = e.querySelector("table");
        wide.push((table ? table.id : e.tagName) + " " + e.scrollWidth + ">" + e.clientWidth);
      }
    });
  var main = document.querySelector("main");
  if (main.scrollWidth > main.clientWidth + 1) wide.push("main " + main.scrollWidth);
  var pre = document.createElement("pre");
  pre.id = "wb-wide";
  pre.textContent = JSON.stringify(wide);
  document.body.appendChild(pre);
});
</script>"""




def too_wide(page: Path, tmp: Path, width: int, *, scroll_ok: bool = False) -> list[str]:
    """The elements of the main column wider than their box at ``width`` px, every
    ``<details>`` opened; ``scroll_ok``: tables in their own scrolling box may be wider
    (the narrow window), the main column itself never."""
    probe = page.with_name(f"probe-widths-{width}.html")
    flag = "<script>window.__wbScrollOk = true;</script>" if scroll_ok else ""
    probe.write_text(page.read_text().replace("<head>", "<head>" + flag + WIDTHS, 1))
    dom, stderr = _chromium(tmp, f"--window-size={width},3000", "--hide-scrollbars",
                            "--virtual-time-budget=3000", "--dump-dom", probe.as_uri())
    found = re.search(r'<pre id="wb-wide">(.*?)</pre>', dom, re.S)
    assert found, f"the page did not finish loading in Chromium:\n{stderr[-2000:]}"
    probe.unlink()
    return json.loads(found.group(1).replace("&quot;", '"'))


def screenshot(page: Path, tmp: Path, width: int, height: int) -> Path:
    """A PNG of ``page`` at ``width`` x ``height`` (kept beside the page, for looking)."""
    shot = page.with_name(f"screenshot-{width}x{height}.png")
    _chromium(tmp, f"--screenshot={shot}", f"--window-size={width},{height}",
              "--hide-scrollbars", page.as_uri())
    assert shot.exists(), "Chromium wrote no screenshot"
    return shot
