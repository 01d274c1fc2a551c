"""Placeholder; the Kafka helper replaces this with a tansu broker fixture."""
