"""Accepted solutions of demo questions, written through the community services.

`accept_solution` keeps the space and member solution counters and records
the `community.solution_accepted` event, as when a member accepts an answer
in the community. The question's author also gives the accepted reply kudos
through `give_kudos`, which counts it on the reply and records the
`community.kudos_given` event. Both stamp the present time, so the simulated
acceptance time then replaces it on the topic, the kudos and the events.
"""

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from apps.community.models import Reply, Topic
from apps.community.services.engagement import give_kudos
from apps.community.services.questions import accept_solution
from apps.membership.models import Member
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

    authors = Member.objects.in_bulk([t.author.pk for t in solved])
    replies = Reply.objects.select_related("topic__space").in_bulk(
        [t.accepted_reply.pk for t in solved]
    )
    for topic in solved:
        reply = replies[topic.accepted_reply.pk]
        give_kudos(member=authors[topic.author.pk], post=reply)

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
            WHERE e.kind IN ('community.solution_accepted', 'community.kudos_given')
              AND e.subject_type_id = %s
              AND e.subject_id = solved.reply_id
            """,
            [reply_ids, solved_times, reply_type.pk],
        )
        cursor.execute(
            """
            UPDATE community_kudos AS k SET created_at = solved.solved_at
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS solved(reply_id, solved_at)
            WHERE k.reply_id = solved.reply_id
            """,
            [[topic.accepted_reply.pk for topic in solved], solved_times],
        )
    return len(solved)
