"""The dispatch job: publish what is due now, then arm a wake-up at the next due time."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scheduler.service import Service


async def dispatch(service: Service) -> None:
    await service.dispatcher.tick()
    service.heartbeat()
    service.arm_wake()
