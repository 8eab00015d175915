"""Query results as polars frames, for the reads that return many rows.

A wide job's plots read a few hundred thousand bucket rows, a day of a large
cluster millions. Per-row Python tuples cost more than the query, and so do
``COPY ... TO STDOUT`` messages: psycopg hands over one message per row
(a 128-node, 48-hour job page spent most of its host_data read in that loop).
Here the server joins the rows into CSV text (one text, or one per value of a
``split`` column) and polars parses those few large strings. Text is quoted
the way CSV quotes it, so a comma, quote or newline in a name stays data;
NULL is an unquoted empty field (polars reads null), an empty text ``""``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import polars as pl
import psycopg


def _cell(column: str, dtype: pl.DataType) -> str:
    if dtype == pl.Utf8:
        return (f"CASE WHEN {column} IS NULL THEN '' ELSE "
                f"'\"' || replace({column}, '\"', '\"\"') || '\"' END")
    return f"coalesce({column}::text, '')"


def query_frame(conn: psycopg.Connection, query: str, params: Sequence[Any] | dict[str, Any],
                schema: dict[str, pl.DataType], *, split: str | None = None) -> pl.DataFrame:
    """The rows of ``query`` (its columns in ``schema``'s order, read as those types).

    ``split``: a column of ``schema`` whose values each get a text of their own
    (a text is at most 1 GB in PostgreSQL; one per host keeps a day of a large
    cluster far below that). Rows come in no particular order.
    """
    names = list(schema)
    alias = [f"c{i}" for i in range(len(names))]
    line = " || ',' || ".join(_cell(f"q.{a}", t) for a, t in zip(alias, schema.values(),
                                                                   strict=True))
    group = f" GROUP BY q.{alias[names.index(split)]}" if split else ""
    rows = conn.execute(
        f"SELECT string_agg({line}, E'\\n') FROM ({query}) AS q({', '.join(alias)}){group}",
        params).fetchall()
    texts = [r[0] for r in rows if r[0]]
    if not texts:
        return pl.DataFrame(schema=schema)
    return pl.read_csv(io.BytesIO("\n".join(texts).encode()), has_header=False,
                       new_columns=names, schema=schema)
