"""Race a filing against a case inserted in another, still open transaction."""

import threading
from collections.abc import Callable

from django.db import connection, transaction

from apps.portal.models import Case

WAIT = 10


def race_against_held_insert(
    *, hold: Callable[[], Case], race: Callable[[], tuple[Case, bool]]
) -> tuple[Case, Case, bool]:
    """Run `hold` in another thread's open transaction, then `race` here.

    The other transaction commits half a second after `race` starts, so a
    second insert in `race` waits on the first one's unique index row and
    then gets the unique violation. Return the held case, and the case and
    created flag that `race` returned. An error in the thread fails the test.
    """
    inserted = threading.Event()
    release = threading.Event()
    held_cases: list[Case] = []
    errors: list[BaseException] = []

    def insert_and_hold() -> None:
        try:
            with transaction.atomic():
                held_cases.append(hold())
                inserted.set()
                release.wait(timeout=WAIT)
        except Exception as error:  # reported by the assert below
            errors.append(error)
        finally:
            inserted.set()
            connection.close()

    holder = threading.Thread(target=insert_and_hold)
    holder.start()
    assert inserted.wait(timeout=WAIT)
    threading.Timer(0.5, release.set).start()

    case, created = race()
    holder.join(timeout=3 * WAIT)

    assert errors == []
    return held_cases[0], case, created
