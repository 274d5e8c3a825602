"""Opening the configured log backend."""

from __future__ import annotations

from auditstream.config.runtime import RuntimeSettings
from auditstream.pipeline.log import Log


def open_log(settings: RuntimeSettings) -> Log:
    """The log ``settings`` name. Raises :class:`pipeline.errors.LogError` if it cannot open."""
    if settings.backend == "kafka":
        from auditstream.pipeline.kafka_log import KafkaLog

        return KafkaLog(settings.kafka_bootstrap)
    from auditstream.pipeline.embedded_log import EmbeddedLog

    return EmbeddedLog(settings.embedded_path)
