"""Housekeeping: renew our own in-flight leases, and resolve leases whose owner died."""

from __future__ import annotations

from scheduler.dispatch import Dispatcher


async def housekeeping(dispatcher: Dispatcher) -> None:
    await dispatcher.renew()
    await dispatcher.resolve_expired_leases()
