"""Opening the configured log backend."""

from __future__ import annotations

from auditstream.config.runtime import RuntimeSettings
from auditstream.pipeline.log import Log

BROKER_WAIT_S = 10.0
"""How long a command waits for a Kafka broker to answer before it gives up."""

BROKER_HINT = (
    "start one (deploy/local/kafka.sh start) or name a running one with --bootstrap or "
    "AUDITSTREAM_KAFKA_BOOTSTRAP"
)


def open_log(settings: RuntimeSettings) -> Log:
    """The log ``settings`` name. Raises :class:`pipeline.errors.LogError` if it cannot open:
    :class:`pipeline.errors.BrokerUnreachable` when the backend is Kafka and no broker answers
    within :data:`BROKER_WAIT_S` seconds."""
    if settings.backend == "kafka":
        from auditstream.pipeline.kafka_log import KafkaLog

        log = KafkaLog(settings.kafka_bootstrap)
        try:
            log.wait_for_broker(BROKER_WAIT_S, hint=BROKER_HINT)
        except BaseException:
            log.close()
            raise
        return log
    from auditstream.pipeline.embedded_log import EmbeddedLog

    return EmbeddedLog(settings.embedded_path)
