"""Creating the topics every deployment has (idempotent)."""

from auditstream.pipeline import topics
from auditstream.pipeline.log import Log


def ensure_core_topics(log_backend: Log, activity_partitions: int = 1) -> None:
    """Create the activity, dead-letter and the compacted settings, status, token and sent
    batch boundary topics if missing."""
    log_backend.create_topic(topics.ACTIVITY, partitions=activity_partitions)
    log_backend.create_topic(topics.DEAD_LETTERS)
    for name in (topics.SETTINGS, topics.STATUS, topics.TOKENS, topics.SINK_BATCHES):
        log_backend.create_topic(name, compacted=True)
