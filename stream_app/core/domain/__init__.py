"""Pure: events, records, the matching decision, order and progress; no I/O at all."""
