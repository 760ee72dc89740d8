"""Dates are (year, month, day) tuples in the proleptic Gregorian calendar."""

MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def is_leap_year(year):
    """Divisible by 4, except centuries that are not divisible by 400."""
    if year % 400 == 0:
        return True
    if year % 100 == 0:
        return False
    return year % 4 == 0


def days_in_month(year, month):
    """Number of days in ``month`` (1-12) of ``year``."""
    if not 1 <= month <= 12:
        raise ValueError("month must be in 1..12")
    if month == 2 and is_leap_year(year):
        return 29
    return MONTH_DAYS[month - 1]


def day_of_year(year, month, day):
    """1 for January 1st, up to 365 or 366."""
    if not 1 <= day <= days_in_month(year, month):
        raise ValueError("day out of range")
    total = day
    for m in range(1, month):
        total += days_in_month(year, m)
    return total


def _ordinal(year, month, day):
    """Days since 0001-01-01, which is day 1."""
    y = year - 1
    return y * 365 + y // 4 - y // 100 + y // 400 + day_of_year(year, month, day)


def days_between(start, end):
    """Signed number of days from ``start`` to ``end``."""
    return _ordinal(*end) - _ordinal(*start)


def weekday(year, month, day):
    """Name of the weekday; 0001-01-01 was a Monday."""
    return WEEKDAYS[(_ordinal(year, month, day) - 1) % 7]


def add_days(date, days):
    """The date ``days`` after ``date`` (``days`` may be negative)."""
    year, month, day = date
    day += days
    while day > days_in_month(year, month):
        day -= days_in_month(year, month)
        month += 1
        if month > 12:
            month = 1
            year += 1
    while day < 1:
        month -= 1
        if month < 1:
            month = 12
            year -= 1
        day += days_in_month(year, month)
    return (year, month, day)
