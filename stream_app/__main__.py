"""``python -m stream_app`` is ``stream-app``."""

from .cli import main

main()
