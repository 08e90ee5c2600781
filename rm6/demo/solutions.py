"""Accepted solutions of demo questions, written through the community service.

`accept_solution` keeps the space and member solution counters and records
the `community.solution_accepted` event, as when a member accepts an answer
in the community. It stamps the present time, so the simulated acceptance
time then replaces it on the topic and on the event.
"""

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.community.models import Reply, Topic
from apps.community.services.questions import accept_solution
from rm6.demo.records import DemoDataSet


def write_demo_solutions(data: DemoDataSet) -> int:
    """Accept the chosen reply of each solved demo question; return the count."""
    solved = [topic for topic in data.topics if topic.accepted_reply is not None]
    if not solved:
        return 0
    users = get_user_model().objects.in_bulk([t.author.user_pk for t in solved])

    for topic in solved:
        accept_solution(
            topic=Topic(pk=topic.pk),
            reply=Reply(pk=topic.accepted_reply.pk),
            actor_user=users[topic.author.user_pk],
        )

    topic_ids = [topic.pk for topic in solved]
    reply_ids = [str(topic.accepted_reply.pk) for topic in solved]
    solved_times = [topic.solved_at for topic in solved]
    reply_type = ContentType.objects.get_for_model(Reply)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE community_topic AS t SET solved_at = solved.solved_at
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS solved(id, solved_at)
            WHERE t.id = solved.id
            """,
            [topic_ids, solved_times],
        )
        cursor.execute(
            """
            UPDATE lifecycle_activityevent AS e SET occurred_at = solved.solved_at
            FROM unnest(%s::text[], %s::timestamptz[]) AS solved(reply_id, solved_at)
            WHERE e.kind = 'community.solution_accepted'
              AND e.subject_type_id = %s
              AND e.subject_id = solved.reply_id
            """,
            [reply_ids, solved_times, reply_type.pk],
        )
    return len(solved)
