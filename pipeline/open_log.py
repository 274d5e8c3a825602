"""Opening the configured log backend."""

from __future__ import annotations

import re

from auditstream.config.runtime import RuntimeSettings
from auditstream.pipeline.errors import BrokerUnreachable, LogError
from auditstream.pipeline.log import Log

BROKER_WAIT_S = 10.0
"""How long a command waits for a Kafka broker to answer before it gives up."""

BROKER_HINT = (
    "start one (deploy/local/kafka.sh start) or name a running one with --bootstrap or "
    "AUDITSTREAM_KAFKA_BOOTSTRAP"
)
SECURE_BROKER_HINT = (
    "check the address (--bootstrap or AUDITSTREAM_KAFKA_BOOTSTRAP) and the security settings "
    "(AUDITSTREAM_KAFKA_SECURITY_PROTOCOL, AUDITSTREAM_KAFKA_SASL_*, AUDITSTREAM_KAFKA_SSL_*)"
)

_SECURITY_CAUSE = re.compile(r"SASL|[Aa]uthenticat|SSL|certificate")


class BrokerRefused(BrokerUnreachable):
    """A broker answered but the connection failed its security checks (authentication, a
    certificate): a configuration to fix, not a broker to wait for."""

    def __init__(self, bootstrap: str, timeout_s: float, cause: str, hint: str) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.cause = cause
        LogError.__init__(self, f"cannot connect to Kafka at {bootstrap}: {cause}: {hint}")


def open_log(settings: RuntimeSettings) -> Log:
    """The log ``settings`` name. Raises :class:`pipeline.errors.LogError` if it cannot open:
    :class:`pipeline.errors.BrokerUnreachable` when the backend is Kafka and no broker answers
    within :data:`BROKER_WAIT_S` seconds (its message names the cause the client saw), or
    :class:`BrokerRefused` when the cause is a failed authentication or certificate check;
    :class:`config.errors.ConfigError` for invalid Kafka security settings."""
    if settings.backend == "kafka":
        from auditstream.pipeline.kafka_log import KafkaLog

        extra = settings.kafka_client_config()
        log = KafkaLog(settings.kafka_bootstrap, extra)
        hint = SECURE_BROKER_HINT if "security.protocol" in extra else BROKER_HINT
        try:
            log.wait_for_broker(BROKER_WAIT_S, hint=hint)
        except BrokerUnreachable as exc:
            log.close()
            if exc.cause and _SECURITY_CAUSE.search(exc.cause):
                raise BrokerRefused(exc.bootstrap, exc.timeout_s, exc.cause, hint) from None
            raise
        except BaseException:
            log.close()
            raise
        return log
    from auditstream.pipeline.embedded_log import EmbeddedLog

    return EmbeddedLog(settings.embedded_path)
