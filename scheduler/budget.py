"""Send budgets: a channel never sends more than its platform lets one account publish.

Each adapter declares its budget (``Adapter.budget``: so many posts per rolling window);
``PROMO_CHANNEL_<NAME>_BUDGET`` replaces it for one channel. Before a send, the dispatcher
counts the channel's publish attempts inside each window in the history table — in the
database, so every process and worker sees the same count — and, when a budget is used up,
the post waits until the oldest attempt in the window leaves it. Attempts held back by a
budget (outcome ``budget``) are not sends and do not count.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from scheduler.config import ChannelConfig
from scheduler.models import HistoryEntry
from scheduler.platforms.base import Adapter, SendBudget, describe_window

#: History outcome of an attempt the budget held back (nothing was sent).
OUTCOME = "budget"


@dataclass(frozen=True)
class BudgetWait:
    """A budget is used up: no send before ``until``."""

    until: dt.datetime
    budget: SendBudget
    used: int

    def reason(self, channel: str) -> str:
        return (f"send budget of channel {channel} used up ({self.used} sends in the last "
                f"{describe_window(self.budget.window)}, {self.budget.describe()} allowed"
                f"{': ' + self.budget.source if self.budget.source else ''}); waiting until "
                f"{self.until:%Y-%m-%d %H:%M:%S} UTC, when the oldest of them leaves the window")


def budgets_for(cfg: ChannelConfig, cls: type[Adapter]) -> tuple[SendBudget, ...]:
    """The channel's budgets: its PROMO_CHANNEL_<NAME>_BUDGET when set, else the platform's."""
    if cfg.budget is None:
        return cls.budget
    key = f"PROMO_CHANNEL_{cfg.name.upper()}_BUDGET"
    return tuple(SendBudget(limit, window, key) for limit, window in cfg.budget)


def check(conn: Any, channel_id: int, budgets: Sequence[SendBudget], now: dt.datetime,
          exclude_history_id: int | None = None) -> BudgetWait | None:
    """None when every budget has room for one more send now; else until when to wait."""
    if not budgets:
        return None
    h = HistoryEntry.__table__.c
    longest = max(b.window for b in budgets)
    q = (select(h.started_at)
         .where(h.channel_id == channel_id, h.action == "attempt", h.started_at > now - longest,
                or_(h.outcome.is_(None), h.outcome != OUTCOME))
         .order_by(h.started_at))
    if exclude_history_id is not None:
        q = q.where(h.id != exclude_history_id)
    times = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in conn.execute(q).scalars()]
    wait: BudgetWait | None = None
    for budget in budgets:
        inside = [t for t in times if t > now - budget.window]
        if len(inside) < budget.limit:
            continue
        # Room again when all but limit-1 of them have left the window.
        until = inside[len(inside) - budget.limit] + budget.window
        if wait is None or until > wait.until:
            wait = BudgetWait(until=until, budget=budget, used=len(inside))
    return wait


@dataclass(frozen=True)
class BudgetUse:
    """How much of one budget a channel has used: ``used`` sends within the last ``budget.window``."""

    budget: SendBudget
    used: int

    def window(self) -> str:
        """The budget's window as people read it ('24 h')."""
        return describe_window(self.budget.window)


def usage(conn: Any, channel_id: int, budgets: Sequence[SendBudget], now: dt.datetime) -> list[BudgetUse]:
    """Each budget's use now (what the channels page shows), counted as :func:`check` counts."""
    if not budgets:
        return []
    h = HistoryEntry.__table__.c
    longest = max(b.window for b in budgets)
    q = (select(h.started_at)
         .where(h.channel_id == channel_id, h.action == "attempt", h.started_at > now - longest,
                or_(h.outcome.is_(None), h.outcome != OUTCOME)))
    times = [t if t.tzinfo else t.replace(tzinfo=dt.UTC) for t in conn.execute(q).scalars()]
    return [BudgetUse(b, sum(1 for t in times if t > now - b.window)) for b in budgets]
