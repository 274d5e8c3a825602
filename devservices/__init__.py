"""Local development services that tests and benchmarks start on 127.0.0.1: a Kafka broker,
the storage emulators, a webhook receiver and the project's own processes. Not installed with
the product."""
