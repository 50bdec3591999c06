"""Reports: a self-contained HTML page, a Markdown summary and terminal tables."""

from watchbench.report.html import write_report
from watchbench.report.text import compare_markdown, compare_table, noise_table

__all__ = ["compare_markdown", "compare_table", "noise_table", "write_report"]
