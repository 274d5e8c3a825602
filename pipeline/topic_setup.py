"""Creating the topics every deployment has (idempotent)."""

from pipeline import topics
from pipeline.log import Log


def ensure_core_topics(log_backend: Log, activity_partitions: int = 1) -> None:
    """Create the activity, settings (compacted) and dead-letter topics if missing."""
    log_backend.create_topic(topics.ACTIVITY, partitions=activity_partitions)
    log_backend.create_topic(topics.SETTINGS, compacted=True)
    log_backend.create_topic(topics.DEAD_LETTERS)
