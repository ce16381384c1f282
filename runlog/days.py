"""The runner's days and times as typed on the command line or given to the API.

Exactly ``YYYY-MM-DD`` for a local calendar day, and ``YYYY-MM-DD HH:MM`` (seconds and a UTC
offset optional, ``T`` allowed for the space) for a planned start. Anything else — "June 1",
"1.6.2021", "02/01/2021", "20210601" — is an :class:`~runlog.errors.InputError` naming the
value, never a guess at what it meant (pandas reads "June 1" as the year 1 and "1.6.2021"
as 6 January). Standard library only: the CLI checks its options before loading pandas.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from runlog.errors import InputError

DAY_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?(Z|[+-]\d{2}:\d{2})?")


def _named(text: str, option: str | None) -> str:
    return f"{text!r} for {option}" if option else repr(text)


def parse_day_text(text: str, option: str | None = None) -> date:
    """The local calendar day ``text`` ('YYYY-MM-DD'); InputError for anything else, naming
    ``option`` (e.g. '--since') when given."""
    text = str(text).strip()
    if DAY_PATTERN.fullmatch(text):
        try:
            return date.fromisoformat(text)
        except ValueError as err:
            raise InputError(f"not a date: {_named(text, option)} ({err}; use YYYY-MM-DD)"
                             ) from err
    raise InputError(f"not a date: {_named(text, option)} (use YYYY-MM-DD)")


def parse_time_text(text: str, option: str | None = None) -> datetime:
    """A planned start ``text``: 'YYYY-MM-DD HH:MM' (local, naive), seconds and a UTC offset
    optional; InputError for anything else, naming ``option`` when given."""
    text = str(text).strip()
    hint = "use 'YYYY-MM-DD HH:MM', your local time"
    if TIME_PATTERN.fullmatch(text):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError as err:
            raise InputError(f"not a date/time: {_named(text, option)} ({err}; {hint})"
                             ) from err
    raise InputError(f"not a date/time: {_named(text, option)} ({hint})")
