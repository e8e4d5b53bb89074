"""Store time: a store's time zone and opening hours decide when a generated task is due.

``opening_hours`` is ``{"mon": [["10:00", "22:00"]], …}`` (local time; a day without hours is
closed). A reminder made while the store is closed is due when it next opens; a "next store day"
task is due at the opening of the next day the store opens.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class StoreHours:
    def __init__(self, time_zone: str | None, opening_hours: dict | None) -> None:
        self.zone = ZoneInfo(time_zone or "Asia/Shanghai")
        self.hours: dict[str, list[tuple[dt.time, dt.time]]] = {}
        for day, spans in (opening_hours or {}).items():
            self.hours[day] = [(dt.time.fromisoformat(a), dt.time.fromisoformat(b)) for a, b in spans]

    def _spans(self, day: dt.date) -> list[tuple[dt.time, dt.time]]:
        if not self.hours:  # no hours recorded: open all day
            return [(dt.time(0), dt.time(23, 59, 59))]
        return self.hours.get(DAYS[day.weekday()], [])

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.zone)

    def open_at_or_after(self, moment: dt.datetime) -> dt.datetime:
        """``moment`` when the store is open then, else its next opening (UTC)."""
        local = self.local(moment)
        for offset in range(0, 8):
            day = local.date() + dt.timedelta(days=offset)
            for start, end in self._spans(day):
                opens = dt.datetime.combine(day, start, tzinfo=self.zone)
                closes = dt.datetime.combine(day, end, tzinfo=self.zone)
                if local < opens:
                    return opens.astimezone(dt.UTC)
                if opens <= local < closes:
                    return moment.astimezone(dt.UTC)
        return moment.astimezone(dt.UTC)  # never open: due at once

    def next_store_day(self, moment: dt.datetime) -> dt.datetime:
        """The opening of the next day after ``moment``'s local day that the store opens (UTC)."""
        local = self.local(moment)
        for offset in range(1, 9):
            day = local.date() + dt.timedelta(days=offset)
            spans = self._spans(day)
            if spans:
                return dt.datetime.combine(day, spans[0][0], tzinfo=self.zone).astimezone(dt.UTC)
        return (moment + dt.timedelta(days=1)).astimezone(dt.UTC)

    def today(self, moment: dt.datetime) -> dt.date:
        return self.local(moment).date()
