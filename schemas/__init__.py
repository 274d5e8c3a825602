"""Avro schemas, their codec and the activity catalog."""
