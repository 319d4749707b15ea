"""callback-stats: exact, real-time callback statistics from Kafka call events."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("callback-stats")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
