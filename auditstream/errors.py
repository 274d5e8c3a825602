"""The root of the project's error tree.

Every error the project raises on purpose derives from :class:`AuditstreamError`; each package
adds its own small subtree (``schemas.errors``, ``producers.errors``, ``pipeline.errors``,
``sinks.errors``, ``config.errors``). Vendor exceptions are mapped onto these at the boundary.
"""


class AuditstreamError(Exception):
    """Base class of every error raised by auditstream."""
