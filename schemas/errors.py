"""Errors of the event codec."""

from auditstream.errors import AuditstreamError


class CodecError(AuditstreamError):
    """A message could not be encoded or decoded. ``reason`` is a short stable code."""

    reason = "codec_error"


class MalformedMessage(CodecError):
    """The bytes are not a single-object-encoded Avro message (bad marker, truncated, corrupt)."""

    reason = "malformed"


class UnknownSchema(CodecError):
    """The message names a writer schema fingerprint that no published version has."""

    reason = "unknown_schema"

    def __init__(self, fingerprint: int) -> None:
        super().__init__(
            f"unknown writer schema fingerprint {fingerprint:#018x}: the message was written "
            "with a schema that is not in schemas/avro/ (publish it there to read such events)"
        )
        self.fingerprint = fingerprint
