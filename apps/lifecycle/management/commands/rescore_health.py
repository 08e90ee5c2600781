from django.core.management.base import BaseCommand

from apps.lifecycle import scoring
from apps.membership.services.data_sources import Source as DataSource
from apps.membership.services.data_sources import record_source_run


def _refresh(level: str, ids: list[int]) -> int:
    if level == "member":
        return scoring.refresh_member_health_scores(member_ids=ids)
    return scoring.refresh_account_health_scores(account_ids=ids)


class Command(BaseCommand):
    help = (
        "Recompute the health scores of every member and account now, in this "
        "process, with the active scorecards. The nightly pass does the same "
        "through the Celery workers. Each batch commits on its own."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--level",
            choices=["member", "account", "all"],
            default="all",
            help="Which scores to recompute: member, account or all (default).",
        )

    def handle(self, *args, **options):
        if options["level"] == "all":
            levels = ["member", "account"]
        else:
            levels = [options["level"]]
        for level in levels:
            scored = 0
            batches = 0
            with record_source_run(
                source=DataSource.SCORE_COMPUTATION, action=f"rescore_health {level}"
            ):
                for ids in scoring.iter_id_batches(level):
                    scored += _refresh(level, ids)
                    batches += 1
            scorecard = scoring.get_scorecard_spec(level).name
            self.stdout.write(
                f"Scored {scored} {level}(s) in {batches} batch(es) with the "
                f"scorecard “{scorecard}”."
            )
