"""callback-stats: exact, real-time callback statistics from Kafka call events."""
