from apps.lifecycle.registry import register_measure_source
from apps.portal.selectors.onboarding import build_onboarding_share_sql


def connect() -> None:
    register_measure_source("onboarding_share", build_onboarding_share_sql)
