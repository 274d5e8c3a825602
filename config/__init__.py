"""Typed settings: per-account stream settings and destinations, and process runtime settings."""
