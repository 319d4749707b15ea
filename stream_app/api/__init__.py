"""HTTP: the stateless stats reader, its live streams and its documents."""
