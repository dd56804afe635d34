"""Finished runs gathered into the papers' tables (``giugan report``, docs/reporting.md).

Python API (what ``notebooks/tables.ipynb`` uses)::

    from giugan.reporting import gather, markdown
    report = gather(["runs"])          # run folders, or folders holding them
    print(markdown(report))            # also csv_text(report), latex(report), plot_row(row, folder)
"""

from giugan.reporting.plots import plot_row
from giugan.reporting.records import RunRecord, find_runs, read_run
from giugan.reporting.render import csv_text, latex, markdown
from giugan.reporting.summary import Report, RowSummary, gather, summarise

__all__ = ["Report", "RowSummary", "RunRecord", "csv_text", "find_runs", "gather", "latex", "markdown",
           "plot_row", "read_run", "summarise"]
