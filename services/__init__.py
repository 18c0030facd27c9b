"""Data-plane services: the embedding service, the ingestion worker (sink) and the HTTP API."""
