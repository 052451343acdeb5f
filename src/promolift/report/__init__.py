"""The HTML report: one self-contained, offline page with plots and tables of a trained bundle.

``curves`` computes (arrays and DataFrames), ``plots`` draws them on matplotlib Axes (imported
lazily, never pyplot), ``html`` assembles the page.

Examples
--------
>>> from promolift.report import write_report            # doctest: +SKIP
>>> write_report("report.html", bundle, evaluation=evaluation, plan=plan)  # doctest: +SKIP
"""

from promolift.report.html import render_report, write_report

__all__ = ["render_report", "write_report"]
