"""What ``python -m ohlcv migrate`` did (or, in a dry run, would do): one line per ticker and the totals."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What the migration did (or, in a dry run, would do) to one ticker."""

    CONVERTED = "converted"
    RENAMED = "renamed"
    CONFLICT = "conflict"
    CURRENT = "already current"
    DROPPED = "dropped"
    INVALID = "invalid"
    #: a key under ``ticker:``/``ticker_`` whose name is not one of this package's
    SKIPPED = "skipped"


#: actions that change Redis
WRITES: frozenset[Action] = frozenset({Action.CONVERTED, Action.RENAMED, Action.CONFLICT, Action.DROPPED})


@dataclass(frozen=True)
class TickerMigration:
    """One ticker's outcome (``ticker`` is the key's name for ``skipped``).

    :param detail: what was found and done, for the report line
    :param periods_deleted: the old reader's period keys deleted with it
    """

    ticker: str
    action: Action
    detail: str
    periods_deleted: int = 0

    def line(self) -> str:
        periods = f"; {self.periods_deleted} old period keys deleted" if self.periods_deleted else ""
        return f"{self.ticker}  {self.action}: {self.detail}{periods}"


@dataclass(frozen=True)
class MigrationReport:
    results: list[TickerMigration]
    dry_run: bool

    @property
    def counts(self) -> dict[Action, int]:
        counts = dict.fromkeys(Action, 0)
        for result in self.results:
            counts[result.action] += 1
        return counts

    @property
    def periods_deleted(self) -> int:
        return sum(result.periods_deleted for result in self.results)

    @property
    def changed(self) -> bool:
        return self.periods_deleted > 0 or any(result.action in WRITES for result in self.results)

    @property
    def failed(self) -> bool:
        return any(result.action == Action.INVALID for result in self.results)

    def totals(self) -> str:
        counts = ", ".join(f"{action} {count}" for action, count in self.counts.items())
        verb = "would delete" if self.dry_run else "deleted"
        return f"totals: {counts}; old period keys {verb} {self.periods_deleted}"
