"""Scheduled job functions. Jobs only *create* posts; only the dispatcher publishes.

Each is importable and takes plain arguments, so the service can register it with an
explicit id and ``replace_existing=True``.
"""
