"""One shard copy: a tantivy index on disk, and the OpenSearch query DSL subset the
storefront uses translated to tantivy queries.

Supported: ``match`` (``operator`` or/and), ``multi_match`` (``fields`` with ``^boost``),
``term``/``terms`` on keyword fields, ``range`` on numbers, ``bool`` (``must``,
``should``, ``filter``, ``must_not``) and ``match_all``. Anything else is a 400
``parsing_exception``/``query_shard_exception`` as OpenSearch would answer it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import tantivy

TEXT_FIELDS = ("name", "category_text")
KEYWORD_FIELDS = ("sku", "category")
FLOAT_FIELDS = ("price",)
INT_FIELDS = ("stock",)
BOOL_FIELDS = ("flash_sale",)
TOKEN = re.compile(r"[0-9a-z]+")


class QueryError(ValueError):
    """A query this subset does not understand (OpenSearch: 400)."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason

    def error(self) -> dict:
        cause = {"type": self.kind, "reason": self.reason}
        return {"error": {"root_cause": [cause], **cause}, "status": 400}


def schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    b.add_text_field("id", stored=True, tokenizer_name="raw")
    b.add_text_field("sku", stored=True, tokenizer_name="raw")
    b.add_text_field("name", stored=True, tokenizer_name="default")
    b.add_text_field("category", stored=True, tokenizer_name="raw")
    b.add_text_field("category_text", stored=False, tokenizer_name="default")
    b.add_float_field("price", stored=True, indexed=True, fast=True)
    b.add_integer_field("stock", stored=True, indexed=True, fast=True)
    b.add_boolean_field("flash_sale", stored=True, indexed=True, fast=True)
    return b.build()


class Shard:
    """A shard copy in ``path``; reopened as it is after a node restart."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.schema = schema()
        try:
            self.index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        except ValueError:  # a half-written folder (killed during creation): start empty
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            self.index = tantivy.Index(self.schema, path=str(self.path), reuse=True)
        self.index.reload()
        self._sources: dict[tuple[int, int], dict] = {}  # stored fields, per reader

    def num_docs(self) -> int:
        return self.index.searcher().num_docs

    def bulk(self, docs: list[tuple[str, dict]], deletes: list[str]) -> None:
        """Index (replace by id) and delete documents, then commit: visible at once."""
        writer = self.index.writer(heap_size=15_000_000, num_threads=1)
        existing = self.num_docs() > 0
        for doc_id in [*deletes, *(d for d, _ in docs)] if existing else deletes:
            writer.delete_documents_by_term("id", doc_id)
        for doc_id, source in docs:
            writer.add_document(_document(doc_id, source))
        writer.commit()
        writer.wait_merging_threads()
        self.index.reload()
        self._sources = {}

    def search(self, query: dict | None, limit: int) -> tuple[int, list[tuple[float, dict]]]:
        """(total hits, top ``limit`` as (score, _source))."""
        q = to_query(self.index, self.schema, query or {"match_all": {}})
        searcher = self.index.searcher()
        result = searcher.search(q, max(limit, 0) or 1, count=True)
        hits = []
        for score, address in result.hits[:limit]:
            key = (address.segment_ord, address.doc)
            source = self._sources.get(key)
            if source is None:
                source = self._sources[key] = _source(searcher.doc(address))
            hits.append((float(score), source))
        return int(result.count or 0), hits


def _document(doc_id: str, source: dict) -> tantivy.Document:
    doc = tantivy.Document()
    doc.add_text("id", doc_id)
    doc.add_text("sku", str(source.get("sku", doc_id)))
    doc.add_text("name", str(source.get("name", "")))
    doc.add_text("category", str(source.get("category", "")))
    doc.add_text("category_text", str(source.get("category", "")))
    doc.add_float("price", float(source.get("price") or 0.0))
    doc.add_integer("stock", int(source.get("stock") or 0))
    doc.add_boolean("flash_sale", bool(source.get("flash_sale")))
    return doc


def _source(doc: tantivy.Document) -> dict:
    d = doc.to_dict()

    def first(key: str, default: Any = None) -> Any:
        values = d.get(key) or []
        return values[0] if values else default

    return {"sku": first("sku"), "name": first("name"), "category": first("category"),
            "price": round(float(first("price", 0.0)), 2), "stock": int(first("stock", 0)),
            "flash_sale": bool(first("flash_sale", False))}


def tokens(text: str) -> list[str]:
    return TOKEN.findall(str(text).lower())


def _field(name: str) -> tuple[str, float]:
    field, _, boost = name.partition("^")
    field = "category_text" if field == "category" else field
    if field not in TEXT_FIELDS:
        raise QueryError("query_shard_exception", f"field [{field}] is not a text field")
    try:
        return field, float(boost) if boost else 1.0
    except ValueError as exc:
        raise QueryError("parsing_exception", f"bad boost in [{name}]") from exc


def _text(index, schema, field: str, text: str, operator: str) -> tantivy.Query:
    terms = [tantivy.Query.term_query(schema, field, t) for t in tokens(text)]
    if not terms:
        return tantivy.Query.empty_query() if hasattr(tantivy.Query, "empty_query") else \
            tantivy.Query.boolean_query([(tantivy.Occur.MustNot, tantivy.Query.all_query())])
    occur = tantivy.Occur.Must if operator == "and" else tantivy.Occur.Should
    return tantivy.Query.boolean_query([(occur, t) for t in terms])


def _one_key(clause: Any, what: str) -> tuple[str, Any]:
    if not isinstance(clause, dict) or len(clause) != 1:
        raise QueryError("parsing_exception", f"[{what}] query malformed, expected one field")
    return next(iter(clause.items()))


def to_query(index, schema, query: dict) -> tantivy.Query:
    kind, body = _one_key(query, "query")
    Q, O = tantivy.Query, tantivy.Occur  # noqa: E741
    if kind == "match_all":
        return Q.all_query()
    if kind == "match":
        field, spec = _one_key(body, "match")
        spec = spec if isinstance(spec, dict) else {"query": spec}
        name, boost = _field(field)
        q = _text(index, schema, name, spec.get("query", ""), spec.get("operator", "or").lower())
        return Q.boost_query(q, boost) if boost != 1.0 else q
    if kind == "multi_match":
        if not isinstance(body, dict) or "query" not in body:
            raise QueryError("parsing_exception", "[multi_match] requires query")
        parts = []
        for name in body.get("fields") or list(TEXT_FIELDS):
            field, boost = _field(name)
            q = _text(index, schema, field, body["query"], body.get("operator", "or").lower())
            parts.append(Q.boost_query(q, boost) if boost != 1.0 else q)
        return Q.disjunction_max_query(parts) if len(parts) > 1 else parts[0]
    if kind in ("term", "terms"):
        field, value = _one_key(body, kind)
        values = value if kind == "terms" else [value.get("value") if isinstance(value, dict)
                                               else value]
        if not isinstance(values, list):
            raise QueryError("parsing_exception", "[terms] needs a list")
        return Q.boolean_query([(O.Should, _term(schema, field, v)) for v in values])
    if kind == "range":
        field, spec = _one_key(body, "range")
        return _range(schema, field, spec)
    if kind == "bool":
        if not isinstance(body, dict):
            raise QueryError("parsing_exception", "[bool] query malformed")
        clauses = []
        for key, occur, score in (("must", O.Must, True), ("filter", O.Must, False),
                                  ("should", O.Should, True), ("must_not", O.MustNot, False)):
            items = body.get(key) or []
            for item in items if isinstance(items, list) else [items]:
                q = to_query(index, schema, item)
                clauses.append((occur, q if score else Q.const_score_query(q, 0.0)))
        if not any(o in (O.Must, O.Should) for o, _ in clauses):
            clauses.append((O.Must, Q.all_query()))
        return Q.boolean_query(clauses)
    raise QueryError("parsing_exception", f"unknown query [{kind}]")


def _term(schema, field: str, value: Any) -> tantivy.Query:
    Q = tantivy.Query
    if field in KEYWORD_FIELDS:
        return Q.term_query(schema, field, str(value))
    if field in BOOL_FIELDS:
        return Q.term_query(schema, field, bool(value))
    if field in INT_FIELDS:
        return Q.term_query(schema, field, int(value))
    if field in FLOAT_FIELDS:
        return Q.term_query(schema, field, float(value))
    raise QueryError("query_shard_exception", f"no keyword field [{field}]")


def _range(schema, field: str, spec: Any) -> tantivy.Query:
    if field not in FLOAT_FIELDS + INT_FIELDS or not isinstance(spec, dict):
        raise QueryError("query_shard_exception", f"[range] on unsupported field [{field}]")
    kind = float if field in FLOAT_FIELDS else int
    big = 1e18 if kind is float else 2**62
    lo = spec.get("gte", spec.get("gt", -big))
    hi = spec.get("lte", spec.get("lt", big))
    ftype = tantivy.FieldType.Float if kind is float else tantivy.FieldType.Integer
    return tantivy.Query.range_query(schema, field, ftype, kind(lo), kind(hi),
                                     include_lower="gt" not in spec,
                                     include_upper="lt" not in spec)
