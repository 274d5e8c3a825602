"""The object-store template's probe against an in-memory store: which refusal fails the
check, which is only a note, and what the result says."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from auditstream.sinks.errors import DeliveryError, PermanentError, TransientError
from auditstream.sinks.object_store import ObjectStoreSink, check_key

DESTINATION = "store-1"
PREFIX = "audit/stream"


class MemoryStore(ObjectStoreSink):
    """Objects in a dict; ``refusals`` maps (call, n-th time it is made) to the error it
    raises; ``rewrites`` makes the store hand back other bytes than it was given."""

    type = "memory"

    def __init__(
        self, refusals: dict[tuple[str, int], DeliveryError], *, rewrites: bool = False
    ) -> None:
        super().__init__(
            destination_id=DESTINATION, prefix=PREFIX, fmt="ndjson", compression="gzip"
        )
        self.objects: dict[str, bytes] = {}
        self.calls: list[str] = []
        self.keys: set[str] = set()
        self._refusals = refusals
        self._rewrites = rewrites

    def _called(self, call: str, key: str) -> None:
        self.calls.append(call)
        self.keys.add(key)
        error = self._refusals.get((call, self.calls.count(call)))
        if error is not None:
            raise error

    def _put(
        self, key: str, data: bytes, *, content_type: str, content_encoding: str | None
    ) -> None:
        assert content_type == "application/json"
        assert content_encoding is None
        self._called("put", key)
        self.objects[key] = data

    def _get(self, key: str) -> bytes:
        self._called("get", key)
        return self.objects[key] + (b" " if self._rewrites else b"")

    def _delete(self, key: str) -> None:
        self._called("delete", key)
        del self.objects[key]


DENIED = PermanentError("the store denied access", cause="access_denied")
MISSING = PermanentError("the bucket does not exist", cause="bucket_missing")
DOWN = TransientError("could not connect to the store", cause="unreachable")


@dataclass(frozen=True)
class Case:
    name: str
    refusals: dict[tuple[str, int], DeliveryError]
    ok: bool
    cause: str | None
    message: str
    """Where ``{key}`` stands for the check object's key."""
    calls: tuple[str, ...]
    left_behind: bool = False
    rewrites: bool = False


CASES = [
    Case(
        "works",
        {},
        True,
        None,
        f"destination {DESTINATION} works: a check object was written, overwritten, read back, "
        "deleted",
        ("put", "put", "get", "delete"),
    ),
    Case(
        "write refused",
        {("put", 1): MISSING},
        False,
        "bucket_missing",
        "writing {key} failed: the bucket does not exist",
        ("put",),
    ),
    Case(
        "overwrite refused",
        {("put", 2): DENIED},
        False,
        "access_denied",
        "overwriting {key}, as a replayed batch does, failed: the store denied access",
        ("put", "put"),
        left_behind=True,
    ),
    Case(
        "read-back refused is a note",
        {("get", 1): DENIED},
        True,
        None,
        f"destination {DESTINATION} works: a check object was written, overwritten, not read "
        "back (refused; delivery does not read), deleted",
        ("put", "put", "get", "delete"),
    ),
    Case(
        "read-back unreachable",
        {("get", 1): DOWN},
        False,
        "unreachable",
        "reading {key} back failed: could not connect to the store",
        ("put", "put", "get"),
        left_behind=True,
    ),
    Case(
        "read-back differs",
        {},
        False,
        "read_mismatch",
        "{key} read back differs from what was written: check for a proxy or a bucket policy "
        "that rewrites objects",
        ("put", "put", "get"),
        left_behind=True,
        rewrites=True,
    ),
    Case(
        "delete refused is a note",
        {("delete", 1): DENIED},
        True,
        None,
        f"destination {DESTINATION} works: a check object was written, overwritten, read back, "
        "not deleted (access_denied: remove {key} by hand)",
        ("put", "put", "get", "delete"),
        left_behind=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_probe(case: Case) -> None:
    store = MemoryStore(case.refusals, rewrites=case.rewrites)

    result = store.probe()

    [key] = store.keys
    assert (result.ok, result.cause) == (case.ok, case.cause)
    assert result.message == case.message.format(key=key)
    assert tuple(store.calls) == case.calls
    assert bool(store.objects) == case.left_behind


def test_steps_say_what_was_done() -> None:
    store = MemoryStore({})

    steps = store.probe().steps

    [key] = store.keys
    written = len(json.dumps({"auditstream_check": key, "destination": DESTINATION}))
    assert steps[0].startswith(f"wrote {key} (")
    assert int(steps[0].removeprefix(f"wrote {key} (").split()[0]) > written
    assert steps[1] == f"overwrote {key}"
    assert steps[2].startswith(f"read {key} back: the same ")
    assert steps[3:] == [f"deleted {key}"]


def test_refusals_end_the_steps_with_the_cause() -> None:
    store = MemoryStore({("put", 1): MISSING, ("delete", 1): DENIED})
    assert store.probe().steps[-1].endswith(".json: failed (bucket_missing)")

    noted = MemoryStore({("get", 1): DENIED, ("delete", 1): DENIED}).probe().steps
    assert [step.split(":")[0] for step in noted[2:]] == ["note", "note"]
    assert noted[2].endswith("was refused (the store denied access)")
    assert noted[3].endswith("was refused (the store denied access); delivery does not delete")


def test_check_object_document() -> None:
    store = MemoryStore({("delete", 1): DENIED})

    store.probe()

    [(key, data)] = store.objects.items()
    document = json.loads(data)
    assert key == check_key(PREFIX, document["auditstream_check"])
    assert document["destination"] == DESTINATION
    assert document["attempt"] == 2  # the overwrite is what stays


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("audit/stream", "audit/stream/_auditstream_check/c-1.json"),
        ("/audit/", "audit/_auditstream_check/c-1.json"),
        ("", "_auditstream_check/c-1.json"),
    ],
)
def test_check_key(prefix: str, expected: str) -> None:
    assert check_key(prefix, "c-1") == expected
