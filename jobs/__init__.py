"""Scheduled job functions. Jobs only *create* posts; only the dispatcher publishes.

Each is importable and takes plain arguments (settings, database, dispatcher, a clock, an
alert callable); ``scheduler/service.py`` declares every job's id, trigger, misfire grace
and coalescing, and passes those arguments. Nothing here imports the service.
"""
