"""calendar_tools: Gregorian calendar arithmetic without the datetime module."""

from calendar_tools.dates import (
                                  add_days,
                                  day_of_year,
                                  days_between,
                                  days_in_month,
                                  is_leap_year,
                                  weekday,
)

__all__ = ["add_days", "day_of_year", "days_between", "days_in_month", "is_leap_year", "weekday"]
