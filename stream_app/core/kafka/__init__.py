"""Kafka: topic names and creation, partitioning, end offsets, checked delivery."""
