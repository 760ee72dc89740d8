from calendar_tools import add_days, day_of_year, days_between, days_in_month, is_leap_year, weekday


def _raises(fn, *args):
    try:
        fn(*args)
    except ValueError:
        return True
    return False


def test_leap_years():
    assert is_leap_year(2024)
    assert is_leap_year(2000)
    assert not is_leap_year(1900)
    assert not is_leap_year(2023)


def test_days_in_month():
    assert days_in_month(2023, 1) == 31
    assert days_in_month(2023, 4) == 30
    assert days_in_month(2023, 12) == 31


def test_days_in_february():
    assert days_in_month(2024, 2) == 29
    assert days_in_month(2100, 2) == 28


def test_days_in_month_bad():
    assert _raises(days_in_month, 2023, 13)
    assert _raises(days_in_month, 2023, 0)


def test_day_of_year():
    assert day_of_year(2023, 1, 1) == 1
    assert day_of_year(2023, 3, 1) == 60
    assert day_of_year(2024, 12, 31) == 366


def test_day_of_year_bad_day():
    assert _raises(day_of_year, 2023, 2, 29)
    assert _raises(day_of_year, 2023, 1, 0)


def test_days_between():
    assert days_between((2024, 1, 1), (2024, 3, 1)) == 60
    assert days_between((2000, 1, 1), (2001, 1, 1)) == 366
    assert days_between((2024, 3, 1), (2024, 1, 1)) == -60


def test_weekday():
    assert weekday(2024, 1, 1) == "Monday"
    assert weekday(2000, 1, 1) == "Saturday"
    assert weekday(1969, 7, 20) == "Sunday"


def test_add_days_forward():
    assert add_days((2023, 12, 30), 3) == (2024, 1, 2)
    assert add_days((2024, 2, 28), 1) == (2024, 2, 29)


def test_add_days_backward():
    assert add_days((2024, 3, 1), -1) == (2024, 2, 29)
    assert add_days((2024, 1, 1), -1) == (2023, 12, 31)


def test_add_days_zero():
    assert add_days((2023, 5, 31), 0) == (2023, 5, 31)


def test_add_days_long():
    assert add_days((2023, 1, 1), 365) == (2024, 1, 1)
