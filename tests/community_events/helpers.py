from datetime import UTC, datetime, time, timedelta


def later_same_utc_day(moment: datetime) -> datetime:
    """Return a moment up to 30 minutes after `moment` and on its UTC day.

    A test that sends two digests on one day with a fixed 30-minute gap
    fails when it runs in the half hour before midnight UTC.
    """
    end_of_day = datetime.combine(moment.astimezone(UTC).date(), time.max, tzinfo=UTC)
    return min(moment + timedelta(minutes=30), end_of_day)
