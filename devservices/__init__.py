"""Real external services (such as a Kafka broker) that tests and benchmarks start locally."""
