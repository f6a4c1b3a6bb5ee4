"""The sandbox's search tier: OpenSearch-like node processes (tantivy shards behind a
bounded search pool) and a domain endpoint that routes, retries and reports ``_shards``."""
