"""Development tools, shipped but never imported by the worker or the reader."""
