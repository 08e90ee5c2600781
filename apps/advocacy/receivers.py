from apps.advocacy.services import REPLY_POINTS, award_points


def award_reply_points(event) -> None:
    """Award points for a reply to someone else's topic; own topics earn none."""
    if event.properties.get("is_own_topic"):
        return
    award_points(
        member=event.member, points=REPLY_POINTS, reason="reply_posted", event=event
    )
