"""``query_frame``: many rows as one CSV text from the server, parsed by polars.

Names come from the wire (host names, event names): a comma, a quote or a
newline in one must stay data, and NULL must stay apart from an empty text.
"""

from __future__ import annotations

import polars as pl
import psycopg
import pytest

from hpcperfstats.db.read import query_frame

SCHEMA = {"t": pl.Float64, "host": pl.Utf8, "note": pl.Utf8, "n": pl.Int64}


@pytest.mark.integration
def test_text_with_commas_quotes_newlines_and_nulls_survives(pg_url):
    rows = [(1.5, 'a,"b"', None, 1), (2.25, "", "x\ny", None), (1e300, "c", "d,e", 3)]
    query = ("SELECT * FROM (VALUES (%s::float8, %s::text, %s::text, %s::int8),"
             " (%s, %s, %s, %s), (%s, %s, %s, %s)) v")
    params = [x for row in rows for x in row]
    with psycopg.connect(pg_url) as conn:
        one = query_frame(conn, query, params, SCHEMA)
        split = query_frame(conn, query, params, SCHEMA, split="host")
        empty = query_frame(conn, query + " WHERE false", params, SCHEMA)
    assert sorted(one.rows()) == sorted(rows)
    assert split.sort("t").equals(one.sort("t"))
    assert empty.is_empty() and empty.schema == pl.Schema(SCHEMA)
