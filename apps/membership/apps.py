from django.apps import AppConfig


class MembershipConfig(AppConfig):
    name = "apps.membership"
    label = "membership"
    verbose_name = "Membership"

    def ready(self) -> None:
        from allauth.account.signals import email_confirmed
        from django.contrib.auth.signals import user_logged_in
        from django.core import checks
        from django.db.models.signals import post_migrate

        from apps.membership import defaults, receivers
        from rm6.mail import check_email_backend, check_email_security

        # Sign-up confirmations are this app's mail, so it checks the backend.
        checks.register(check_email_backend, deploy=True)
        checks.register(check_email_security)

        post_migrate.connect(
            defaults.create_default_rows,
            sender=self,
            dispatch_uid="membership.create_default_rows",
        )
        user_logged_in.connect(
            receivers.record_member_sign_in,
            dispatch_uid="membership.record_member_sign_in",
        )
        email_confirmed.connect(
            receivers.create_member_on_email_confirmed,
            dispatch_uid="membership.create_member_on_email_confirmed",
        )
