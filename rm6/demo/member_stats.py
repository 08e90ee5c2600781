"""Community counters and trust levels of the demo members.

Demo topics and replies go in with bulk_create, which skips the services
that keep MemberStats, so this writes what they would have left.

The counters follow `count_member` in apps.community.services.moderation:
topics and replies that are neither hidden nor deleted, replies only in such
topics, and solutions as those replies accepted for a topic. Kudos received
are the Kudos rows on the member's posts, as `give_kudos` counts them.

The community raises a trust level in `update_trust_level` after each post,
with the time since the member's first post, and never lowers it. The
level left is therefore the one computed at the member's last post, from
`compute_trust_level` with the solutions accepted and kudos given by then.
Posts count as the counters do, without hidden or deleted ones, which the
demo does not write.
"""

from datetime import datetime

from django.db import connection

from apps.community.models import MemberStats
from apps.community.services.abuse import compute_trust_level

COUNT_SQL = """
WITH members AS (
    SELECT unnest(%(member_ids)s::bigint[]) AS member_id
),
topics AS (
    SELECT author_id, count(*) AS topic_count
    FROM community_topic
    WHERE author_id = ANY(%(member_ids)s)
      AND NOT is_hidden AND deleted_at IS NULL
    GROUP BY author_id
),
replies AS (
    SELECT r.author_id,
           count(*) AS reply_count,
           count(accepted_for.id) AS solution_count
    FROM community_reply AS r
    JOIN community_topic AS t ON t.id = r.topic_id
    LEFT JOIN community_topic AS accepted_for ON accepted_for.accepted_reply_id = r.id
    WHERE r.author_id = ANY(%(member_ids)s)
      AND NOT r.is_hidden AND r.deleted_at IS NULL
      AND NOT t.is_hidden AND t.deleted_at IS NULL
    GROUP BY r.author_id
),
kudos AS (
    SELECT coalesce(t.author_id, r.author_id) AS author_id, count(*) AS received
    FROM community_kudos AS k
    LEFT JOIN community_topic AS t ON t.id = k.topic_id
    LEFT JOIN community_reply AS r ON r.id = k.reply_id
    WHERE coalesce(t.author_id, r.author_id) = ANY(%(member_ids)s)
    GROUP BY 1
)
INSERT INTO community_memberstats
    (member_id, topic_count, reply_count, solution_count, kudos_received, trust_level)
SELECT members.member_id,
       coalesce(topics.topic_count, 0),
       coalesce(replies.reply_count, 0),
       coalesce(replies.solution_count, 0),
       coalesce(kudos.received, 0),
       0
FROM members
LEFT JOIN topics ON topics.author_id = members.member_id
LEFT JOIN replies ON replies.author_id = members.member_id
LEFT JOIN kudos ON kudos.author_id = members.member_id
ON CONFLICT (member_id) DO UPDATE SET
    topic_count = EXCLUDED.topic_count,
    reply_count = EXCLUDED.reply_count,
    solution_count = EXCLUDED.solution_count,
    kudos_received = EXCLUDED.kudos_received
"""

# One row per demo member with a post: the stored counters, the first and
# last post times (hidden and deleted posts included, as update_trust_level
# reads them), and the solutions and kudos the member had at the last post.
LAST_POST_SQL = """
WITH posts AS (
    SELECT author_id, created_at FROM community_topic
    WHERE author_id = ANY(%(member_ids)s)
    UNION ALL
    SELECT author_id, created_at FROM community_reply
    WHERE author_id = ANY(%(member_ids)s)
),
spans AS (
    SELECT author_id, min(created_at) AS first_at, max(created_at) AS last_at
    FROM posts
    GROUP BY author_id
),
solutions AS (
    SELECT r.author_id, count(*) AS solution_count
    FROM community_topic AS t
    JOIN community_reply AS r ON r.id = t.accepted_reply_id
    JOIN spans ON spans.author_id = r.author_id
    WHERE t.solved_at <= spans.last_at
      AND NOT r.is_hidden AND r.deleted_at IS NULL
    GROUP BY r.author_id
),
kudos AS (
    SELECT spans.author_id, count(*) AS received
    FROM community_kudos AS k
    LEFT JOIN community_topic AS t ON t.id = k.topic_id
    LEFT JOIN community_reply AS r ON r.id = k.reply_id
    JOIN spans ON spans.author_id = coalesce(t.author_id, r.author_id)
    WHERE k.created_at <= spans.last_at
    GROUP BY spans.author_id
)
SELECT stats.member_id,
       stats.topic_count,
       stats.reply_count,
       coalesce(solutions.solution_count, 0),
       coalesce(kudos.received, 0),
       stats.trust_level,
       spans.first_at,
       spans.last_at
FROM spans
JOIN community_memberstats AS stats ON stats.member_id = spans.author_id
LEFT JOIN solutions ON solutions.author_id = spans.author_id
LEFT JOIN kudos ON kudos.author_id = spans.author_id
"""

RAISE_LEVELS_SQL = """
UPDATE community_memberstats AS stats SET trust_level = raised.level
FROM unnest(%s::bigint[], %s::smallint[]) AS raised(member_id, level)
WHERE stats.member_id = raised.member_id AND stats.trust_level < raised.level
"""


def trust_level_at(
    *,
    posts: int,
    solutions: int,
    kudos_received: int,
    first_post_at: datetime,
    at: datetime,
) -> int:
    """Return the level `update_trust_level` computes at `at` for these counts."""
    stats = MemberStats(
        topic_count=posts,
        reply_count=0,
        solution_count=solutions,
        kudos_received=kudos_received,
    )
    days = (at - first_post_at).days
    return compute_trust_level(stats=stats, days_since_first_post=days)


def write_member_stats(member_ids: list[int]) -> int:
    """Store the community counters and trust level of each member; return the count.

    Three statements for all members: an upsert of the counters, a read of
    each poster's last post, and one UPDATE of the levels that rise.
    """
    if not member_ids:
        return 0
    params = {"member_ids": member_ids}
    with connection.cursor() as cursor:
        cursor.execute(COUNT_SQL, params)
        cursor.execute(LAST_POST_SQL, params)
        rows = cursor.fetchall()

        raised_ids = []
        raised_levels = []
        for row in rows:
            member_id, topics, replies, solutions, kudos, level, first, last = row
            earned = trust_level_at(
                posts=topics + replies,
                solutions=solutions,
                kudos_received=kudos,
                first_post_at=first,
                at=last,
            )
            if earned > level:
                raised_ids.append(member_id)
                raised_levels.append(earned)
        cursor.execute(RAISE_LEVELS_SQL, [raised_ids, raised_levels])
    return len(member_ids)
