"""Numbers, amounts and moments in the words of the owner's language and timezone.

Owners read "Thursday afternoon" and "12 GB", never "2026-11-26T14:03Z" or
"12884901888 bytes"; a range stays a range, so there is no false precision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


_BABEL_LOCALE = {"en": "en_US", "zh-CN": "zh_CN"}
_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ZH_DAYS = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_EN_PARTS = ((6, "early morning"), (12, "morning"), (18, "afternoon"), (24, "evening"))
_ZH_PARTS = ((6, "凌晨"), (12, "上午"), (18, "下午"), (24, "晚上"))


@dataclass(frozen=True)
class Humanizer:
    locale: str
    tz: ZoneInfo
    now: float

    @property
    def zh(self) -> bool:
        return self.locale == "zh-CN"

    # ----------------------------------------------------------------- amounts

    def number(self, value: float, decimals: int = 0) -> str:
        from babel.numbers import format_decimal  # babel loads with the first notice, not with the agent

        pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
        return format_decimal(value, format=pattern, locale=_BABEL_LOCALE[self.locale])

    def bytes(self, value: float) -> str:
        units = ("bytes", "KB", "MB", "GB", "TB", "PB")
        index = 0
        while abs(value) >= 1000 and index < len(units) - 1:
            value /= 1000
            index += 1
        if index == 0:
            return f"{self.number(value)} {'字节' if self.zh else 'bytes'}"
        return f"{self.number(value, 1 if abs(value) < 10 else 0)} {units[index]}"

    def percent(self, ratio: float) -> str:
        return f"{self.number(ratio * 100, 1 if 0 < ratio < 0.01 else 0)}%"

    def money(self, amount: float, currency: str) -> str:
        from babel.numbers import format_currency

        pattern = "¤#,##0" if abs(amount) >= 100 else "¤#,##0.00"
        return format_currency(amount, currency, format=pattern, locale=_BABEL_LOCALE[self.locale],
                               currency_digits=False)

    def frequency(self, share: float) -> str:
        """0.025 -> 'about 1 in 40' / '大约每 40 次中有 1 次'."""
        if share <= 0:
            return "never" if not self.zh else "从未"
        n = max(2, round(1 / share))
        return f"大约每 {self.number(n)} 次中有 1 次" if self.zh else f"about 1 in {self.number(n)}"

    # ------------------------------------------------------------------ time

    def duration(self, seconds: float) -> str:
        """A rounded length of time: 'about 3 hours' / '约 3 小时'."""
        seconds = max(0.0, seconds)
        size, en, zh = next(unit for unit in ((86400, "day", "天"), (3600, "hour", "小时"), (60, "minute", "分钟"))
                            if seconds >= unit[0] * 0.95 or unit[0] == 60)
        count = max(1, round(seconds / size))
        return f"约 {count} {zh}" if self.zh else f"about {count} {en}{'s' if count != 1 else ''}"

    def local(self, ts: float) -> datetime:
        return datetime.fromtimestamp(ts, self.tz)

    def day(self, ts: float) -> str:
        """'today', 'tomorrow', 'Thursday', '3 December' (and the Chinese equivalents)."""
        moment, today = self.local(ts), self.local(self.now)
        offset = (moment.date() - today.date()).days
        if offset == 0:
            return "今天" if self.zh else "today"
        if offset == 1:
            return "明天" if self.zh else "tomorrow"
        if 1 < offset < 7:
            return _ZH_DAYS[moment.weekday()] if self.zh else _EN_DAYS[moment.weekday()]
        return self.date(ts)

    def past(self, ts: float) -> str:
        """When something happened: 'this morning', 'yesterday afternoon', 'on 28 November' / '11月28日'."""
        offset = (self.local(ts).date() - self.local(self.now).date()).days
        if offset == 0:
            return self.day_part(ts)
        if offset == -1:
            part = self.part_of_day(ts)
            if self.zh:
                return f"昨天{part}"
            return {"evening": "last night", "early morning": "early yesterday morning"}.get(part, f"yesterday {part}")
        return self.date(ts) if self.zh else f"on {self.date(ts)}"

    def date(self, ts: float) -> str:
        """'3 December' / '12月3日'."""
        moment = self.local(ts)
        return f"{moment.month}月{moment.day}日" if self.zh else f"{moment.day} {moment:%B}"

    def stamp(self, ts: float) -> str:
        """An exact local time for the appendix: '2026-12-01 15:03 CET'."""
        return self.local(ts).strftime("%Y-%m-%d %H:%M %Z")

    def part_of_day(self, ts: float) -> str:
        hour = self.local(ts).hour
        return next(name for limit, name in (_ZH_PARTS if self.zh else _EN_PARTS) if hour < limit)

    def clock(self, ts: float) -> str:
        """The nearest hour or half hour: '2 pm', '2:30 pm' / '下午2点', '下午2点半'."""
        moment = self.local(ts) + timedelta(minutes=15)
        moment = moment.replace(minute=30 if moment.minute >= 30 else 0, second=0, microsecond=0)
        hour = moment.hour % 12 or 12
        if self.zh:
            part = "中午" if moment.hour == 12 else self.part_of_day(moment.timestamp())
            return f"{part}{hour}点{'半' if moment.minute else ''}"
        if moment.hour == 12 and not moment.minute:
            return "noon"
        minutes = f":{moment.minute:02d}" if moment.minute else ""
        return f"{hour}{minutes} {'am' if moment.hour < 12 else 'pm'}"

    def moment(self, ts: float) -> str:
        """A point in time at the precision a person plans with."""
        ahead = ts - self.now
        if ahead < 90 * 60:
            return self.after(ahead)
        day = self.day(ts)
        if self.zh:
            return f"{day}{self.clock(ts)}左右"
        return f"{day} around {self.clock(ts)}"

    def after(self, seconds: float) -> str:
        return f"{self.duration(seconds)}后" if self.zh else f"in {self.duration(seconds)}"

    def span(self, earliest: float, latest: float) -> str:
        """When something will happen, as honest as the range allows."""
        if latest - self.now < 90 * 60:
            low, high = max(1, round((earliest - self.now) / 60)), max(1, round((latest - self.now) / 60))
            if low == high:
                return self.after(earliest - self.now)
            return f"{low} 到 {high} 分钟后" if self.zh else f"in {low} to {high} minutes"
        if latest - earliest < 2 * 3600:
            return self.moment((earliest + latest) / 2)
        first, last = self.day_part(earliest), self.day_part(latest)
        if first == last:
            return first
        if self.zh:
            end = self.part_of_day(latest) if self.day(latest) == self.day(earliest) else last
            return f"{first}到{end}之间"
        end = self.part_of_day(latest) if self.day(latest) == self.day(earliest) else last
        return f"between {first} and {end}"

    def day_part(self, ts: float) -> str:
        """'this afternoon', 'tonight', 'early Tuesday morning' / '今天下午', '周二凌晨'.

        The small hours belong to the day they are on: 00:03 on Tuesday is early Tuesday
        morning, never "Tuesday night" (which reads as 22 hours later).
        """
        day, part = self.day(ts), self.part_of_day(ts)
        if self.zh:
            return f"{day}{part}"
        if day == "today":
            return {"evening": "tonight", "early morning": "early this morning"}.get(part, f"this {part}")
        if part == "early morning":
            return f"early on {day}" if day[0].isdigit() else f"early {day} morning"
        return f"{day} {part}"
