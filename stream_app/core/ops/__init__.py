"""Operator commands: ``stream-app audit`` and ``stream-app tail``."""
