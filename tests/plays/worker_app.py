"""The Celery app that the play tests start workers with.

It is the project's app with the test actions registered, on the Redis key
prefix that the test chose. Every broker key (queues, unacknowledged
messages, control replies) carries the prefix, so these workers never take
or restore the messages of another test run on the same Redis database.
"""

import os

from rm6.celery import app
from tests.plays.actions import register_test_actions

app.conf.broker_transport_options = {
    **app.conf.broker_transport_options,
    "global_keyprefix": os.environ["RM6_TEST_BROKER_PREFIX"],
    # Look for messages to restore on every poll, so that a message of a
    # killed worker comes back soon after the visibility timeout.
    "unacked_restore_throttle": 1,
}
register_test_actions()

__all__ = ["app"]
