from django.apps import AppConfig


class LifecycleConfig(AppConfig):
    name = "apps.lifecycle"
    label = "lifecycle"
    verbose_name = "Lifecycle"

    def ready(self) -> None:
        from allauth.account.signals import email_confirmed
        from django.contrib.auth.signals import user_logged_in
        from django.core import checks

        from apps.lifecycle import receivers, views
        from apps.lifecycle.actions import register_action
        from apps.lifecycle.delivery.handlers import register_delivery_actions
        from apps.lifecycle.delivery.webhooks import erase_member_from_webhook_payloads
        from apps.lifecycle.ingestion.identities import (
            erase_member_segment_identities,
            export_member_segment_identities,
        )
        from apps.lifecycle.ingestion.limits import (
            check_held_message_cap,
            check_message_cap,
        )
        from apps.lifecycle.plays.runner import WAIT_ACTION, run_wait_step
        from apps.lifecycle.plays.triggers import dispatch_account_band_change
        from apps.lifecycle.registry import register_kind, subscribe_band_change
        from apps.lifecycle.selectors import export_member_data
        from apps.lifecycle.services import move_merged_member_activity
        from apps.membership.admin_links import register_admin_link
        from apps.membership.anonymisation import register_anonymise_handler
        from apps.membership.exports import register_export_section
        from apps.membership.merge import register_merge_handler

        register_kind(
            "membership.signed_in",
            "A member signed in, or confirmed their email address while signed in.",
        )
        register_kind(
            "product.*",
            "Product usage pushed by an integration; the rest of the name is "
            "the feature or action, for example product.report_exported.",
            from_integrations=True,
        )
        register_kind(
            "lifecycle.health_band_changed",
            "A member's health band changed (red, yellow, green).",
            counts_as_active=False,
        )
        register_export_section("activity_events", export_member_data)
        register_merge_handler("lifecycle", move_merged_member_activity)
        register_anonymise_handler("webhooks", erase_member_from_webhook_payloads)
        register_anonymise_handler(
            "segment_identities", erase_member_segment_identities
        )
        register_export_section("segment_identities", export_member_segment_identities)
        register_delivery_actions()
        register_action(WAIT_ACTION, run_wait_step, label="Wait")
        subscribe_band_change(dispatch_account_band_change)
        register_admin_link("account", "Health page", views.account_health_url)
        register_admin_link("member", "Health page", views.member_health_url)
        checks.register(check_message_cap)
        checks.register(check_held_message_cap)
        user_logged_in.connect(
            receivers.record_sign_in, dispatch_uid="lifecycle.record_sign_in"
        )
        # The membership app, listed first in INSTALLED_APPS, connects its
        # receiver first, so the member has joined its account before this runs.
        email_confirmed.connect(
            receivers.record_sign_in_on_email_confirmation,
            dispatch_uid="lifecycle.record_sign_in_on_email_confirmation",
        )
