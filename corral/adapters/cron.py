"""CronRules with croniter (UTC), plus Woodpecker's six-field form (seconds first) and ``@every <duration>``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from croniter import croniter

from corral.core.errors import InvalidInput
from corral.core.pipelines.durations import parse_duration

__all__ = ["CroniterRules"]

_DESCRIPTORS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_MIN_EVERY_SECONDS = 60


class CroniterRules:
    """See corral.core.pipelines.schedules.CronRules."""

    def _every(self, expression: str) -> int | None:
        if not expression.startswith("@every"):
            return None
        try:
            seconds = parse_duration(expression.removeprefix("@every").strip())
        except ValueError as exc:
            raise InvalidInput(f"cron {expression!r}: {exc}", field="cron") from None
        if seconds < _MIN_EVERY_SECONDS:
            raise InvalidInput(f"cron {expression!r}: @every needs at least {_MIN_EVERY_SECONDS}s", field="cron")
        return seconds

    def check(self, expression: str) -> None:
        if not expression or len(expression) > 200:
            raise InvalidInput("cron must be a cron expression of at most 200 characters", field="cron")
        if self._every(expression) is not None:
            return
        fields = expression.split()
        if expression.startswith("@"):
            ok = expression in _DESCRIPTORS
        elif len(fields) == 5:
            ok = croniter.is_valid(expression)
        elif len(fields) == 6:
            ok = croniter.is_valid(expression, second_at_beginning=True)
        else:
            ok = False
        if not ok:
            raise InvalidInput(f"cron {expression!r} is not a valid cron expression (5 fields, 6 with seconds "
                               "first, @daily..., or @every <duration>)", field="cron")

    def next_after(self, expression: str, after: datetime) -> datetime:
        self.check(expression)
        every = self._every(expression)
        after = after.astimezone(UTC)
        if every is not None:  # aligned on the epoch, so every replica computes the same due times
            epoch = int(after.timestamp())
            return datetime.fromtimestamp((epoch // every + 1) * every, UTC)
        six = len(expression.split()) == 6
        found = croniter(expression, after, second_at_beginning=six).get_next(datetime)
        assert isinstance(found, datetime)
        if found <= after:  # croniter answers the same second for sub-second starts
            found = croniter(expression, after + timedelta(seconds=1), second_at_beginning=six).get_next(datetime)
        return found.astimezone(UTC)
