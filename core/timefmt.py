"""Times and durations as a person reads them: ISO 8601 in UTC, e.g. ``2027-02-28T12:02:44.633Z``.

Why one helper: the chain keeps every time as integer milliseconds since the Unix epoch (block
time, expiries, deadlines), which is right for rules and hashes and useless to a reader
(``until 1803736964633``). Receipt messages (not hashed, decision 0011) and the ``traco`` command
both render through here, so a person sees one format everywhere, always in UTC (no local time
zone: nodes in different zones must write the same message for the same transaction).

The functions are pure and never raise: a rule calls them while executing a block, where an
exception would turn a clear refusal into ``EXECUTION_FAILED``. A value no calendar can show
(not an integer, or outside years 1..9999) is written as it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def iso_utc(ms: object) -> str:
    """``ms`` (milliseconds since the epoch) as ISO 8601 UTC with a ``Z``; milliseconds shown
    only when there are any (``2027-02-28T12:02:44Z``, ``2027-02-28T12:02:44.633Z``)."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        return str(ms)
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return f"{ms} ms since the epoch"
    millis = ms % 1000
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.year < 1000:  # strftime does not pad years below 1000 on every platform
        text = f"{moment.year:04d}{text[text.index('-') :]}"
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"


def duration(ms: object) -> str:
    """A span of ``ms`` milliseconds in the largest whole unit that fits it exactly
    (``1830 days``, ``36 hours``, ``90 s``, ``250 ms``)."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        return str(ms)
    for unit_ms, singular, plural in (
        (DAY_MS, "day", "days"),
        (3_600_000, "hour", "hours"),
        (60_000, "minute", "minutes"),
        (1000, "s", "s"),
    ):
        if ms and ms % unit_ms == 0:
            count = ms // unit_ms
            return f"{count} {singular if abs(count) == 1 else plural}"
    return f"{ms} ms"
