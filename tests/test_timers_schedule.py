"""タイマー起動スケジュール maths: the next run times people see and the slots the dispatcher fires.

Every time here is an injected instant; nothing reads the clock.
"""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from webapp.timers.schedule import Kind, Schedule, minute_floor, next_runs, occurrences

TOKYO = ZoneInfo("Asia/Tokyo")


def jst(*args) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def local(moments, tz=TOKYO) -> list[str]:
    return [m.astimezone(tz).strftime("%Y-%m-%d %a %H:%M") for m in moments]


def test_daily_runs_every_day_at_the_time_and_instants_are_utc():
    daily = Schedule(Kind.DAILY, time(9, 0))
    runs = next_runs(daily, jst(2027, 3, 10, 8, 59), TOKYO, 5)
    assert local(runs) == [f"2027-03-{d} {w} 09:00" for d, w in
                           [(10, "Wed"), (11, "Thu"), (12, "Fri"), (13, "Sat"), (14, "Sun")]]
    # Stored as UTC: 09:00 in Tokyo is midnight UTC.
    assert runs[0] == datetime(2027, 3, 10, 0, 0, tzinfo=UTC) and runs[0].tzinfo == UTC


def test_the_boundary_minute_itself_is_not_next_but_is_due():
    daily = Schedule(Kind.DAILY, time(9, 0))
    at_nine = jst(2027, 3, 10, 9, 0)
    assert local(next_runs(daily, at_nine, TOKYO, 1)) == ["2027-03-11 Thu 09:00"]
    assert local(next_runs(daily, jst(2027, 3, 10, 8, 59, 59), TOKYO, 1)) == ["2027-03-10 Wed 09:00"]
    # The dispatcher's window (after, until] includes a slot exactly at `until` and excludes one at `after`.
    assert local(occurrences(daily, jst(2027, 3, 10, 8, 59), at_nine, TOKYO)) == ["2027-03-10 Wed 09:00"]
    assert occurrences(daily, at_nine, jst(2027, 3, 10, 9, 0, 59), TOKYO) == []


def test_weekly_with_several_weekdays():
    monday_thursday = Schedule(Kind.WEEKLY, time(9, 30), weekdays=frozenset({0, 3}))
    runs = next_runs(monday_thursday, jst(2027, 3, 10, 12, 0), TOKYO, 5)  # a Wednesday
    assert local(runs) == ["2027-03-11 Thu 09:30", "2027-03-15 Mon 09:30", "2027-03-18 Thu 09:30",
                           "2027-03-22 Mon 09:30", "2027-03-25 Thu 09:30"]
    every_day_but_sunday = Schedule(Kind.WEEKLY, time(18, 0), weekdays=frozenset(range(6)))
    week = next_runs(every_day_but_sunday, jst(2027, 3, 13, 18, 0), TOKYO, 3)  # Saturday, after 18:00
    assert local(week) == ["2027-03-15 Mon 18:00", "2027-03-16 Tue 18:00", "2027-03-17 Wed 18:00"]


def test_monthly_31st_runs_on_the_last_day_of_shorter_months():
    day31 = Schedule(Kind.MONTHLY, time(10, 0), month_day=31)
    runs = next_runs(day31, jst(2027, 1, 15), TOKYO, 5)
    assert local(runs) == ["2027-01-31 Sun 10:00", "2027-02-28 Sun 10:00", "2027-03-31 Wed 10:00",
                           "2027-04-30 Fri 10:00", "2027-05-31 Mon 10:00"]


def test_leap_years_february_29():
    day30 = Schedule(Kind.MONTHLY, time(10, 0), month_day=30)
    assert local(next_runs(day30, jst(2028, 2, 1), TOKYO, 2)) == ["2028-02-29 Tue 10:00", "2028-03-30 Thu 10:00"]
    day29 = Schedule(Kind.MONTHLY, time(10, 0), month_day=29)
    assert local(next_runs(day29, jst(2027, 2, 1), TOKYO, 1)) == ["2027-02-28 Sun 10:00"]
    assert local(next_runs(day29, jst(2028, 2, 1), TOKYO, 1)) == ["2028-02-29 Tue 10:00"]
    # 2100 is not a leap year.
    assert local(next_runs(day29, jst(2100, 2, 1), TOKYO, 1)) == ["2100-02-28 Sun 10:00"]


def test_last_day_of_month():
    last = Schedule(Kind.MONTHLY, time(23, 59), last_day=True)
    runs = next_runs(last, jst(2027, 12, 31, 23, 59), TOKYO, 5)
    assert local(runs) == ["2028-01-31 Mon 23:59", "2028-02-29 Tue 23:59", "2028-03-31 Fri 23:59",
                           "2028-04-30 Sun 23:59", "2028-05-31 Wed 23:59"]


def test_once_is_one_future_instant_and_nothing_after_it_passed():
    once = Schedule(Kind.ONCE, time(15, 0), once_date=date(2027, 4, 1))
    assert local(next_runs(once, jst(2027, 3, 1), TOKYO, 5)) == ["2027-04-01 Thu 15:00"]
    assert next_runs(once, jst(2027, 4, 1, 15, 0), TOKYO, 5) == []
    assert local(occurrences(once, jst(2027, 4, 1, 14, 0), jst(2027, 4, 1, 16, 0), TOKYO)) == ["2027-04-01 Thu 15:00"]


def test_local_midnight_crosses_the_utc_date():
    # 00:30 in Tokyo is 15:30 UTC of the previous day; a window given in UTC still finds it.
    daily = Schedule(Kind.DAILY, time(0, 30))
    found = occurrences(daily, datetime(2027, 3, 9, 15, 0, tzinfo=UTC), datetime(2027, 3, 9, 16, 0, tzinfo=UTC), TOKYO)
    assert found == [datetime(2027, 3, 9, 15, 30, tzinfo=UTC)]
    assert local(found) == ["2027-03-10 Wed 00:30"]


def test_a_window_of_several_days_lists_every_slot_oldest_first():
    weekly = Schedule(Kind.WEEKLY, time(9, 0), weekdays=frozenset({0, 2, 4}))
    found = occurrences(weekly, jst(2027, 3, 1, 9, 0), jst(2027, 3, 8, 9, 0), TOKYO)
    assert local(found) == ["2027-03-03 Wed 09:00", "2027-03-05 Fri 09:00", "2027-03-08 Mon 09:00"]


def test_time_zone_is_configurable_and_dst_days_fire_once():
    new_york = ZoneInfo("America/New_York")
    daily = Schedule(Kind.DAILY, time(2, 30))
    # 2027-03-14: clocks jump from 02:00 to 03:00; the missing 02:30 still fires once (at the shifted time).
    spring = occurrences(daily, datetime(2027, 3, 13, 12, tzinfo=new_york), datetime(2027, 3, 15, 12, tzinfo=new_york),
                         new_york)
    assert len(spring) == 2
    # 2027-11-07: 01:30 happens twice; the slot fires once, at the first one (EDT, UTC-4).
    early = Schedule(Kind.DAILY, time(1, 30))
    autumn = occurrences(early, datetime(2027, 11, 6, 12, tzinfo=new_york), datetime(2027, 11, 7, 12, tzinfo=new_york),
                         new_york)
    assert autumn == [datetime(2027, 11, 7, 5, 30, tzinfo=UTC)]
    utc_daily = next_runs(Schedule(Kind.DAILY, time(9, 0)), datetime(2027, 3, 10, 8, 0, tzinfo=UTC), ZoneInfo("UTC"), 1)
    assert utc_daily == [datetime(2027, 3, 10, 9, 0, tzinfo=UTC)]


def test_descriptions_people_read():
    assert Schedule(Kind.WEEKLY, time(9, 30), weekdays=frozenset({3, 0})).describe() == "毎週 月・木 09:30"
    assert Schedule(Kind.MONTHLY, time(8, 5), last_day=True).describe() == "毎月 末日 08:05"
    assert Schedule(Kind.MONTHLY, time(8, 5), month_day=15).describe() == "毎月 15日 08:05"
    assert Schedule(Kind.ONCE, time(15, 0), once_date=date(2027, 4, 1)).describe() == "一回のみ 2027/04/01 15:00"
    assert Schedule(Kind.DAILY, time(0, 0)).describe() == "毎日 00:00"


def test_slot_minute_is_the_utc_minute():
    assert minute_floor(jst(2027, 3, 10, 9, 0, 42, 123)) == datetime(2027, 3, 10, 0, 0, tzinfo=UTC)
