"""Days and times typed by the runner: exactly YYYY-MM-DD (and 'YYYY-MM-DD HH:MM'), never a
guess at another format."""

from __future__ import annotations

from datetime import date, datetime

import pandas as pd
import pytest

from runlog.days import parse_day_text, parse_time_text
from runlog.errors import InputError
from runlog.localtime import parse_day

#: What pandas read as some day: "June 1" as the year 1, "1.6.2021" as 6 January, ...
NOT_A_DAY = ["June 1", "1.6.2021", "02/01/2021", "2021/06/01", "20210601", "2021-6-1",
             "2021-06-01 08:00", "2021-W22-2", "2021-02-30", "", "notadate"]


def test_a_day_is_exactly_yyyy_mm_dd() -> None:
    assert parse_day_text("2021-06-01") == date(2021, 6, 1)
    assert parse_day("2021-06-01") == pd.Timestamp("2021-06-01")
    assert parse_day("2021-06-01", end=True) == pd.Timestamp("2021-06-02")
    assert parse_day(date(2021, 6, 1)) == pd.Timestamp("2021-06-01")  # the API's dates


@pytest.mark.parametrize("text", NOT_A_DAY)
def test_anything_else_is_an_input_error_naming_the_value(text: str) -> None:
    with pytest.raises(InputError, match="not a date") as err:
        parse_day(text)
    assert repr(text.strip()) in str(err.value)
    with pytest.raises(InputError, match=r"for --since \(") as err:
        parse_day_text(text, "--since")


def test_a_planned_start_is_yyyy_mm_dd_hh_mm() -> None:
    assert parse_time_text("2021-06-01 08:00") == datetime(2021, 6, 1, 8, 0)
    assert parse_time_text("2021-06-01T08:00:30+02:00").utcoffset().total_seconds() == 7200
    for text in ["June 1 8:00", "2021-06-01", "1.6.2021 08:00", "20210601T0800"]:
        with pytest.raises(InputError, match="not a date/time"):
            parse_time_text(text, "--when")
