"""Run Athena SQL for real, with DuckDB over the objects the Glue tables point at.

moto's Athena runs no SQL (research/logpipe-anchors.md, section 4). Here each Glue table
of the query's database becomes a DuckDB view over its S3 objects (fetched from the
sandbox's S3 into a local cache folder: DuckDB cannot read ``s3://`` offline), with
Athena's ``"$path"`` pseudo-column and the table's partition column taken from the key
(``yyyy/MM/dd/HH`` for the Firehose layout, as partition projection derives it).

The Trino functions peakready's own queries use are shimmed as macros:
``from_iso8601_timestamp``, ``to_unixtime``, ``from_unixtime``, ``approx_percentile``,
``date_parse`` (the formats listed in ``SHIMS``). Errors come back as Athena words
them (``SYNTAX_ERROR: ...``, ``TABLE_NOT_FOUND: ...``, ``COLUMN_NOT_FOUND: ...``).
"""

from __future__ import annotations

import hashlib
import io
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

GLUE_TO_DUCK = {"string": "VARCHAR", "varchar": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER",
                "integer": "INTEGER", "double": "DOUBLE", "float": "FLOAT",
                "boolean": "BOOLEAN", "timestamp": "TIMESTAMP", "date": "DATE"}
DUCK_TO_ATHENA = {"VARCHAR": "varchar", "BIGINT": "bigint", "INTEGER": "integer",
                  "HUGEINT": "bigint", "DOUBLE": "double", "FLOAT": "float",
                  "BOOLEAN": "boolean", "TIMESTAMP": "timestamp", "DATE": "date",
                  "TIMESTAMP WITH TIME ZONE": "timestamp with time zone", "DECIMAL": "decimal"}

SHIMS = [
    "CREATE OR REPLACE MACRO from_iso8601_timestamp(s) AS CAST(s AS TIMESTAMPTZ)",
    "CREATE OR REPLACE MACRO to_unixtime(t) AS epoch(t)",
    "CREATE OR REPLACE MACRO from_unixtime(x) AS to_timestamp(x)",
    "CREATE OR REPLACE MACRO approx_percentile(x, p) AS approx_quantile(x, p)",
    # Trino's date_parse speaks MySQL's format (%i minutes, %s seconds); DuckDB's strptime
    # wants a constant format, so the formats peakready's queries use are spelled out
    "CREATE OR REPLACE MACRO date_parse(s, f) AS CASE f "
    "WHEN '%Y-%m-%d-%H-%i-%s' THEN strptime(s, '%Y-%m-%d-%H-%M-%S') "
    "WHEN '%Y-%m-%d %H:%i:%s' THEN strptime(s, '%Y-%m-%d %H:%M:%S') "
    "WHEN '%Y-%m-%d' THEN strptime(s, '%Y-%m-%d') "
    "ELSE error('NOT_SUPPORTED: date_parse format ' || f || ' is not emulated in the sandbox') "
    "END",
]


@dataclass
class Table:
    """A Glue table as the engine needs it."""

    name: str
    location: str  # s3://bucket/prefix/
    columns: list[tuple[str, str]]  # (name, glue type)
    partition_keys: list[str] = field(default_factory=list)
    compressed: bool = True


@dataclass
class Result:
    """Every value already Athena's string (``None`` for NULL), as an Arrow table: pages
    and the CSV are cut from it without a Python object per value."""

    columns: list[tuple[str, str]]  # (name, athena type)
    table: pa.Table
    scanned_bytes: int

    @property
    def num_rows(self) -> int:
        return self.table.num_rows

    def rows(self, start: int = 0, count: int | None = None) -> list[list[str | None]]:
        part = self.table.slice(start, count) if count is not None else self.table.slice(start)
        cols = [c.to_pylist() for c in part.columns]
        return [list(r) for r in zip(*cols, strict=True)] if cols else []

    def csv(self) -> bytes:
        """Athena's result file: header row, every value quoted, NULL empty."""
        sink = io.BytesIO()
        header = ",".join('"' + n.replace('"', '""') + '"' for n, _ in self.columns) + "\n"
        sink.write(header.encode())
        if self.num_rows:
            pacsv.write_csv(self.table, sink, pacsv.WriteOptions(
                include_header=False, quoting_style="all_valid"))
        return sink.getvalue()


class QueryFailed(Exception):
    """``reason`` is Athena's StateChangeReason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


ObjectLister = Callable[[str, str], Sequence[tuple[str, int, str]]]
"""``(bucket, prefix) -> [(key, size, etag)]``"""
ObjectReader = Callable[[str, str], bytes]


def split_s3(location: str) -> tuple[str, str]:
    if not location.startswith("s3://"):
        raise QueryFailed(f"HIVE_METASTORE_ERROR: table location {location!r} is not s3://")
    bucket, _, prefix = location[5:].partition("/")
    return bucket, prefix


class Engine:
    """One DuckDB connection per query; the object cache is shared."""

    def __init__(self, cache_dir: Path, lister: ObjectLister, reader: ObjectReader) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.lister = lister
        self.reader = reader
        # per table layout: (bucket, key, etag) -> (object id, the segment holding it)
        self._index: dict[str, dict[tuple[str, str, str], tuple[int, Path]]] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def _raw(self, bucket: str, key: str, etag: str) -> Path:
        digest = hashlib.sha1(f"{bucket}/{key}/{etag}".encode()).hexdigest()[:20]
        path = self.cache_dir / "raw" / digest
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(self.reader(bucket, key))
            tmp.replace(path)
        return path

    def _segments(self, bucket: str, objects: Sequence[tuple[str, int, str]],
                  table: Table) -> tuple[list[Path], dict[tuple[str, str], int]]:
        """The objects parsed into Parquet once, each row tagged with its object's id (an
        integer: the query joins 1M rows to a few hundred objects on it, not on a path
        string): objects not seen before are parsed together into one new segment (one
        JSON scan), so later queries over them skip the JSON parsing. Segments are per
        table layout. Returns the segments and ``(key, etag) -> object id``."""
        sig = hashlib.sha1((",".join(f"{n}:{t}" for n, t in table.columns)
                            + f"|{table.compressed}").encode()).hexdigest()[:12]
        index = self._index.setdefault(sig, {})
        fresh = [(k, e) for k, _, e in objects if (bucket, k, e) not in index]
        if fresh:
            ids = {}
            for k, e in fresh:
                ids[(k, e)] = self._next_id
                self._next_id += 1
            raws = {str(self._raw(bucket, k, e)): ids[(k, e)] for k, e in fresh}
            seg = self.cache_dir / sig / f"{uuid.uuid4().hex}.parquet"
            seg.parent.mkdir(parents=True, exist_ok=True)
            cols = ", ".join(f"'{n}': '{GLUE_TO_DUCK.get(t.lower(), 'VARCHAR')}'"
                             for n, t in table.columns)
            select = ", ".join(f'j."{n}"' for n, _ in table.columns)
            comp = "gzip" if table.compressed else "none"
            con = duckdb.connect(":memory:")
            try:
                con.execute("CREATE TABLE m(local VARCHAR, obj BIGINT)")
                con.executemany("INSERT INTO m VALUES (?, ?)", list(raws.items()))
                files = ", ".join(f"'{lo}'" for lo in raws)
                tmp = seg.with_suffix(".tmp")
                con.execute(
                    f"COPY (SELECT {select}, m.obj AS \"$obj\" FROM "
                    f"read_json([{files}], format='newline_delimited', compression='{comp}', "
                    f"columns={{{cols}}}, filename=true, ignore_errors=true) j "
                    f"JOIN m ON j.filename = m.local) TO '{tmp}' (FORMAT parquet)")
                tmp.replace(seg)
            finally:
                con.close()
            for k, e in fresh:
                index[(bucket, k, e)] = (ids[(k, e)], seg)
            for local in raws:
                Path(local).unlink(missing_ok=True)
        found = {(k, e): index[(bucket, k, e)] for k, _, e in objects}
        return (sorted({seg for _, seg in found.values()}),
                {ke: obj for ke, (obj, _) in found.items()})

    def _view(self, con: duckdb.DuckDBPyConnection, schema: str, table: Table) -> int:
        bucket, prefix = split_s3(table.location)
        objects = [o for o in self.lister(bucket, prefix) if not o[0].endswith("/")]
        select_cols = ", ".join(f's."{n}"' for n, _ in table.columns)
        if not objects:
            nulls = ", ".join(f"CAST(NULL AS {GLUE_TO_DUCK.get(t.lower(), 'VARCHAR')}) AS \"{n}\""
                              for n, t in table.columns)
            pnulls = "".join(f", CAST(NULL AS VARCHAR) AS \"{k}\"" for k in table.partition_keys)
            con.execute(f'CREATE VIEW "{schema}"."{table.name}" AS SELECT {nulls}, '
                        f"CAST(NULL AS VARCHAR) AS \"$path\"{pnulls} WHERE false")
            return 0
        with self._lock:
            segments, ids = self._segments(bucket, objects, table)
        # only the objects there now, at their current ETag (a segment may hold others),
        # with "$path" and the partition values of each object, from its key (Firehose
        # layout: yyyy/MM/dd/HH after the prefix), once per object instead of per row
        live = f"_live_{table.name}"
        pcols = "".join(f', "{k}" VARCHAR' for k in table.partition_keys)
        con.execute(f'CREATE TABLE main."{live}"(obj BIGINT, "$path" VARCHAR{pcols})')
        hour = re.compile(re.escape(prefix) + r"(\d{4}/\d{2}/\d{2}/\d{2})/")
        rows = []
        for k, _, e in objects:
            match = hour.search(k)  # as regexp_extract: "" when the key has no hour path
            rows.append((ids[(k, e)], f"s3://{bucket}/{k}",
                         *[match.group(1) if match else ""] * len(table.partition_keys)))
        marks = ", ".join("?" * (2 + len(table.partition_keys)))
        con.executemany(f'INSERT INTO "{live}" VALUES ({marks})', rows)
        paths = ", ".join(f"'{seg}'" for seg in segments)
        pselect = "".join(f', l."{k}"' for k in table.partition_keys)
        con.execute(f'CREATE VIEW "{schema}"."{table.name}" AS SELECT {select_cols}, '
                    f'l."$path"{pselect} FROM read_parquet([{paths}]) s JOIN main."{live}" l '
                    f'ON s."$obj" = l.obj')
        return sum(size for _, size, _ in objects)

    def run(self, sql: str, database: str, tables: Sequence[Table]) -> Result:
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET TimeZone='UTC'")
            for shim in SHIMS:
                con.execute(shim)
            con.execute(f'CREATE SCHEMA "{database}"')
            scanned = 0
            wanted = _referenced(sql)
            for table in tables:
                if table.name.lower() in wanted:
                    scanned += self._view(con, database, table)
            con.execute(f'SET search_path = \'"{database}",main\'')
            try:
                rel = con.sql(sql)
                if rel is None:  # a statement without rows
                    return Result([], pa.table({}), scanned)
                names = list(rel.columns)
                types = [_athena_type(t) for t in rel.types]
                arrow = rel.to_arrow_table()
            except duckdb.Error as exc:
                raise QueryFailed(_athena_reason(exc, database)) from exc
            text = pa.table([_text(c) for c in arrow.columns], names=[f"c{i}" for i in
                                                                     range(len(names))])
            return Result(list(zip(names, types, strict=True)), text, scanned)
        finally:
            con.close()


def _referenced(sql: str) -> set[str]:
    """Lower-case identifiers in the query: the tables worth materialising."""
    return {w.strip('"').split(".")[-1].strip('"').lower()
            for w in re.findall(r'[A-Za-z_][\w]*(?:\."?[\w]+"?)?|"[^"]+"', sql)}


def _athena_type(duck_type: Any) -> str:
    text = str(duck_type).upper()
    base = text.split("(")[0]
    return DUCK_TO_ATHENA.get(text, DUCK_TO_ATHENA.get(base, text.lower()))


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Athena returns every value as a string (VarCharValue); NULL stays null."""
    kind = column.type
    if pa.types.is_boolean(kind):
        return pc.if_else(column, "true", "false")
    if pa.types.is_timestamp(kind):
        fmt = "%Y-%m-%d %H:%M:%S" if kind.unit == "s" else "%Y-%m-%d %H:%M:%S.%f"
        return pc.strftime(column, format=fmt) if kind.tz is None else pc.strftime(
            column, format=fmt + " UTC")
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    return pc.cast(column, pa.string())


def _athena_reason(exc: duckdb.Error, database: str) -> str:
    msg = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.ParserException):
        return f"SYNTAX_ERROR: {msg}"
    if isinstance(exc, duckdb.CatalogException):
        table = re.search(r'Table with name "?([\w$]+)"? does not exist', msg)
        if table:
            return (f"TABLE_NOT_FOUND: line 1:1: Table 'awsdatacatalog.{database}."
                    f"{table.group(1)}' does not exist")
        return f"SYNTAX_ERROR: {msg}"
    if isinstance(exc, duckdb.BinderException):
        column = re.search(r'column "?([\w$]+)"? not found', msg, re.IGNORECASE)
        if column:
            return f"COLUMN_NOT_FOUND: line 1:1: Column '{column.group(1)}' cannot be resolved"
        return f"SYNTAX_ERROR: {msg}"
    return f"GENERIC_INTERNAL_ERROR: {msg}"
