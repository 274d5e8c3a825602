"""Sink workers: batching, formats, retries and the destinations (local, webhook, object stores)."""
