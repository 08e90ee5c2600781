import sys

from django.core.management.base import BaseCommand, CommandError

from rm6.demo import services
from rm6.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create a demo data set: accounts, members, community spaces, topics, "
        "replies and accepted solutions, a history of activity events, points "
        "and health scores, and three demo sign-ins. Does nothing when the "
        "demo data already exists."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--accounts", type=int, default=50, help="Number of customer accounts."
        )
        parser.add_argument(
            "--members",
            type=int,
            default=500,
            help="Number of members across all accounts, the demo sign-ins included.",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=2026,
            help="Random seed; the same seed gives the same names and activity.",
        )
        parser.add_argument(
            "--days", type=int, default=365, help="Length of the activity history."
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the existing demo data first, points ledger entries included.",
        )

    def handle(self, *args, **options):
        try:
            import faker  # noqa: F401
        except ImportError as error:
            raise CommandError(
                "Faker is missing. Install the dev extra with "
                "pip install -e '.[dev]', then run seed_demo again."
            ) from error

        if options["reset"]:
            deleted = services.delete_demo_data()
            self.stdout.write(
                f"Deleted the demo data ({deleted} users and their rows)."
            )

        try:
            result = services.seed_demo_data(
                accounts=options["accounts"],
                members=options["members"],
                seed=options["seed"],
                days=options["days"],
                progress=sys.stderr if options["verbosity"] > 0 else None,
            )
        except DomainError as error:
            raise CommandError(error.message) from error

        if result is None:
            self.stdout.write(
                "Demo data is already present (accounts with CRM IDs starting "
                f"{services.DEMO_ID_PREFIX!r}), so nothing was added. Run with "
                "--reset to recreate it."
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created {result.accounts} accounts, {result.members} members, "
                    f"{result.spaces} spaces, {result.topics} topics, "
                    f"{result.replies} replies, {result.solutions} accepted "
                    f"solutions, {result.events} activity events, "
                    f"{result.points_entries} points entries, {result.consents} "
                    f"consents and {result.arr_values} ARR values in "
                    f"{result.seconds:.1f} s."
                )
            )
        self.stdout.write(f"Demo sign-ins, password {services.DEMO_PASSWORD}:")
        for label, email in services.DEMO_SIGN_INS:
            self.stdout.write(f"  {label}: {email}")
