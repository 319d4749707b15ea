"""What the processes say about themselves: health, metrics, logs, traces, stalls."""
