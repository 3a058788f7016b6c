"""Housekeeping: resolve leases whose owner died, and renew our own in-flight leases."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.service import Service


async def housekeeping(service: Service) -> None:
    await service.dispatcher.renew()
    await service.dispatcher.resolve_expired_leases()
