"""How the service restarts a child process that died (scheduler/process.py): soon after a
crash now and then, ever later while it keeps dying young, never more than a minute; and the
log says how it ended."""

from __future__ import annotations

import signal

from scheduler.process import MAX_BACKOFF, STEADY_SECONDS, exit_status, restart_delay


def test_a_child_that_keeps_dying_young_waits_twice_as_long_each_time_up_to_a_minute() -> None:
    waits, last = [], 0.0
    for _ in range(9):
        last = restart_delay(0.5, last)
        waits.append(last)
    assert waits == [1, 2, 4, 8, 16, 32, MAX_BACKOFF, MAX_BACKOFF, MAX_BACKOFF] and MAX_BACKOFF == 60


def test_a_child_that_ran_a_while_before_dying_is_started_again_after_a_second() -> None:
    assert restart_delay(STEADY_SECONDS, MAX_BACKOFF) == 1
    assert restart_delay(STEADY_SECONDS - 1, 4) == 8


def test_the_log_names_the_signal_that_ended_it() -> None:
    assert exit_status(-signal.SIGKILL) == "signal 9 (SIGKILL)"
    assert exit_status(1) == "status 1"
