from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "apps.community"
    label = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        from apps.community.selectors import export_member_data
        from apps.community.selectors.engagement import get_profile_stats
        from apps.community.selectors.subscriptions import (
            filter_visible_event_ids,
            filter_visible_reply_ids,
            filter_visible_topic_ids,
        )
        from apps.community.services import move_merged_member_posts
        from apps.community.services.moderation import ACTIONS as MODERATION_ACTIONS
        from apps.lifecycle.delivery.visibility import register_visibility_filter
        from apps.lifecycle.registry import register_kind
        from apps.membership.exports import register_export_section
        from apps.membership.merge import register_merge_handler
        from apps.membership.panels import register_profile_section

        register_kind("community.question_posted", "A member asked a question.")
        register_kind(
            "community.topic_posted",
            "A member started a discussion, idea or announcement.",
        )
        register_kind("community.reply_posted", "A member replied to a topic.")
        register_kind("community.topic_viewed", "A member viewed a topic.")
        register_kind("community.topic_edited", "A member edited a topic.")
        register_kind("community.reply_edited", "A member edited a reply.")
        register_kind("community.voted", "A member voted on a topic or reply.")
        register_kind("community.vote_withdrawn", "A member withdrew a vote on a post.")
        register_kind(
            "community.kudos_given", "A member gave kudos for a topic or reply."
        )
        register_kind("community.kudos_removed", "A member took back kudos for a post.")
        register_kind(
            "community.event_rsvp",
            "A member answered an event: going, waitlisted or cancelled.",
        )
        register_kind("community.event_attended", "A member attended an event.")
        register_visibility_filter("community.topic", filter_visible_topic_ids)
        register_visibility_filter("community.reply", filter_visible_reply_ids)
        register_visibility_filter("community.communityevent", filter_visible_event_ids)
        register_kind(
            "community.solution_accepted",
            "A reply was accepted as the solution of a question; the event is "
            "recorded on the reply's author.",
        )
        register_kind(
            "community.solution_unaccepted",
            "A reply stopped being the accepted solution of a question.",
            counts_as_active=False,
        )
        register_kind(
            "community.idea_status_changed",
            "Staff changed the status or official response of a member's idea.",
            counts_as_active=False,
        )
        for action in MODERATION_ACTIONS:
            register_kind(
                f"community.moderation_{action}",
                f"Moderation action {action!r} on a member's post or account.",
                counts_as_active=False,
            )
        register_export_section("community", export_member_data)
        register_merge_handler("community", move_merged_member_posts)
        register_profile_section("community", get_profile_stats)
