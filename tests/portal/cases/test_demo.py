from apps.portal.models import Case, SlaPolicy
from rm6.demo.cases import DEMO_CASES
from rm6.demo.services import delete_demo_data, seed_demo_data


def test_demo_seeds_cases_and_policies_and_deletes_cases(db):
    result = seed_demo_data(accounts=1, members=4, days=3)
    statuses = set(Case.objects.values_list("status", flat=True))

    delete_demo_data()

    assert result.cases == len(DEMO_CASES)
    assert statuses == {"new", "open", "waiting", "solved", "closed"}
    assert SlaPolicy.objects.count() == 4
    assert Case.objects.count() == 0
