"""Names vulture (the dead-code check in deploy/local/test.sh) cannot see used.

Each is used by a framework or a protocol, not by a call in this repository: response-model
fields read by FastAPI, attributes read by socketserver/http.server and httpx/botocore through
their own protocols, fields serialised with ``dataclasses.asdict``, pytest's ``pytestmark``.
"""

# ruff: noqa
# mypy: ignore-errors

_.events_waiting  # api/models.py StatusOut: FastAPI response model fields
_.events_waiting_exact
_.oldest_waiting_event_at
_.oldest_waiting_age_s
_.events_expired
_.next_attempt_at
_.settings_applied
_.allow_reuse_address  # socketserver
_.disable_nagle_algorithm  # http.server
_.connect_unix_socket  # httpx network backend protocol
_.load  # botocore credential provider protocol
_.should_exit  # uvicorn.Server
_.startup_seconds  # devservices: shown in failure messages through vars()
_.ru_maxrss_mib  # bench rows: serialised with dataclasses.asdict
_.bytes_meaning
_.set_answer  # devservices collector: used by tests through the receiver handle
pytestmark
relay  # tests: a model field declared to be found by type
_.itersize  # psycopg: rows a named (server-side) cursor fetches per round trip
