"""Word lists and text templates for the demo data set.

The demo customers use a fictional analytics product, so the community text
talks about reports, dashboards, alerts and integrations.
"""

import random

COMPANY_STEMS = [
    "Northwind",
    "Bluefin",
    "Cedarline",
    "Harborview",
    "Ironbark",
    "Lumen",
    "Meridian",
    "Oakridge",
    "Pinecrest",
    "Quarry",
    "Redwood",
    "Saltmarsh",
    "Tidewater",
    "Upland",
    "Vantage",
    "Westfield",
    "Brightwater",
    "Copperleaf",
    "Driftwood",
    "Evergreen",
    "Foxglove",
    "Granite",
    "Highmark",
    "Juniper",
    "Keystone",
    "Larkspur",
    "Marlow",
    "Nimbus",
    "Orchard",
    "Parallax",
    "Riverbend",
    "Silverline",
    "Summit",
    "Tallgrass",
    "Waypoint",
    "Yarrow",
    "Zephyr",
    "Aldgate",
    "Beacon",
    "Clearwater",
    "Delta Ridge",
    "Ember",
    "Fairhaven",
    "Greyhound",
    "Halcyon",
    "Kestrel",
    "Lodestar",
    "Monarch",
    "Northstar",
    "Osprey",
    "Pioneer",
    "Quicksilver",
    "Sterling",
    "Trellis",
    "Vireo",
    "Willowbrook",
]

COMPANY_TRADES = [
    "Analytics",
    "Logistics",
    "Health",
    "Systems",
    "Labs",
    "Capital",
    "Robotics",
    "Freight",
    "Energy",
    "Insurance",
    "Foods",
    "Retail Group",
    "Manufacturing",
    "Software",
    "Bank",
    "Biotech",
    "Telecom",
    "Media",
    "Payments",
    "Clinics",
    "Hospitality",
    "Engineering",
    "Networks",
    "Outdoor",
    "Learning",
    "Security",
    "Mobility",
    "Property",
]

TASKS = [
    "schedule a report to go out every Monday",
    "export a dashboard to PDF with our logo",
    "share a dashboard with people outside our workspace",
    "set up an alert when weekly signups drop",
    "filter a report by fiscal quarter",
    "give read-only access to the finance team",
    "rename a metric without breaking saved reports",
    "compare this month with the same month last year",
    "embed a chart in our intranet",
    "bulk-invite users from a CSV",
    "change the default time zone of a workspace",
    "build a funnel from three events",
    "exclude internal users from every report",
    "move dashboards between workspaces",
    "version a dashboard before a big change",
    "set row-level permissions by region",
    "add a calculated field for gross margin",
    "sort a table by a custom order",
    "translate dashboard titles for our German team",
    "keep exports under the email size limit",
]

FEATURES = [
    "Scheduled exports",
    "Dashboard filters",
    "Alerts",
    "Calculated fields",
    "Workspace permissions",
    "PDF export",
    "Embedded charts",
    "SSO sign-in",
    "Audit log",
    "Report builder",
]

PROBLEMS = [
    "numbers differ from the CSV",
    "times are shown in UTC instead of our zone",
    "the export times out for large tables",
    "filters reset after saving",
    "new users do not see shared dashboards",
    "totals double-count refunds",
    "the chart legend is cut off",
    "the alert fires twice",
]

IDEAS = [
    "Dark mode for dashboards",
    "Let alerts post to a Microsoft Teams channel",
    "Folder structure for saved reports",
    "Annotations on time-series charts",
    "Export straight to Google Sheets",
    "A changelog for each dashboard",
    "Per-user default filters",
    "Keyboard shortcuts in the report builder",
    "Fiscal calendars that start in April",
    "Templates for common SaaS metrics",
    "Comments on individual chart points",
    "A read-only presentation mode",
    "Bulk edit of report owners",
    "Usage statistics per dashboard",
]

TOOLS = [
    "Salesforce",
    "HubSpot",
    "Snowflake",
    "BigQuery",
    "Slack",
    "Microsoft Teams",
    "Zendesk",
    "Jira",
    "Segment",
    "Okta",
    "Microsoft Entra ID",
    "Marketo",
    "Gainsight",
    "dbt",
]

TEAM_TOPICS = [
    "Naming conventions for our shared dashboards",
    "Who owns the quarterly board report?",
    "Rollout plan for the EMEA sales team",
    "Cleaning up unused reports before renewal",
    "Training session for new analysts",
    "Which alerts do we actually need?",
    "Consolidating our three revenue dashboards",
    "Access review for contractors",
]

ANNOUNCEMENTS = [
    "Release notes: faster exports and new chart types",
    "Scheduled maintenance this Saturday",
    "New: alerts in Microsoft Teams",
    "Office hours with the product team",
    "Certification program now open",
    "Security update: SSO session lengths",
    "New onboarding path for report builders",
    "Community guidelines refresh",
    "Customer advisory board: call for members",
    "Release notes: calculated fields 2.0",
    "Webinar: building a renewal-risk dashboard",
    "Our roadmap for the next two quarters",
]

CONTEXT_SENTENCES = [
    "We have about {count} people using {feature_lower} across two teams.",
    "Our finance team asked for this before the end of the quarter.",
    "I looked through the docs but could not find a clear answer.",
    "This worked fine until last week's release.",
    "We are on the enterprise plan, if that matters.",
    "Happy to share screenshots if that helps.",
    "Our data comes from {tool} through the standard connector.",
    "Is anyone else doing this at scale?",
]

REPLY_SENTENCES = [
    "We had the same question last year.",
    "Open the report settings and look under Delivery; it is a bit hidden.",
    "This is possible with a calculated field, which I can share an example of.",
    "Check that the workspace time zone matches your data source.",
    "Support helped us with this; ask them to enable the beta flag.",
    "We ended up using {tool} for that part and it works well.",
    "Watch out for the row limit on exports above 100k rows.",
    "Upvoting this, we need it too.",
    "The office hours session last month covered exactly this.",
    "Our admin set this up with workspace permissions in about ten minutes.",
    "Try duplicating the dashboard first, so you keep the old version.",
    "The API is another option if you need it automated.",
]

OWN_TOPIC_REPLIES = [
    "Thanks, that worked!",
    "Update: support confirmed it is fixed in the next release.",
    "Marking this as solved, thank you all.",
    "Following up: the calculated field approach did the trick.",
]


VERSIONS = [f"{major}.{minor}" for major in (4, 5) for minor in range(10)]

TEAMS = [
    "finance",
    "sales",
    "marketing",
    "support",
    "operations",
    "product",
    "HR",
    "engineering",
    "customer success",
    "leadership",
    "data",
    "partner",
]

REGIONS = ["EMEA", "APAC", "North America", "LATAM", "Nordics", "DACH", "UK", "ANZ"]

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

# A topic title is drawn again up to this many times while it repeats an
# earlier title of the same simulation. The last draw is kept even if it
# repeats, so a very long history still ends.
TITLE_DRAWS = 20


def _question_detail(rng: random.Random) -> str:
    """Return a phrase that places a question in a version, team, tool or region."""
    kind = rng.randrange(4)
    if kind == 0:
        return f"on version {rng.choice(VERSIONS)}"
    if kind == 1:
        return f"for the {rng.choice(TEAMS)} team"
    if kind == 2:
        return f"with {rng.choice(TOOLS)} data"
    return f"in our {rng.choice(REGIONS)} workspace"


def _fill(template: str, rng: random.Random) -> str:
    feature = rng.choice(FEATURES)
    return template.format(
        count=rng.choice([5, 12, 30, 80, 200]),
        feature=feature,
        feature_lower=feature.lower(),
        tool=rng.choice(TOOLS),
        task=rng.choice(TASKS),
        problem=rng.choice(PROBLEMS),
    )


def company_names(count: int, rng: random.Random) -> list[str]:
    """Return `count` distinct company names in a seeded order.

    Each stem is used once before any is used twice, so small sets read like
    unrelated companies.
    """
    stems = list(COMPANY_STEMS)
    rng.shuffle(stems)
    used: set[str] = set()
    names = []
    for index in range(count):
        stem = stems[index % len(stems)]
        trades = [t for t in COMPANY_TRADES if f"{stem} {t}" not in used]
        if trades:
            name = f"{stem} {rng.choice(trades)}"
        else:
            # Past every combination, names repeat with a numeral.
            name = f"{stem} {rng.choice(COMPANY_TRADES)} {len(names)}"
        used.add(name)
        names.append(name)
    return names


def topic_text(
    space_key: str, rng: random.Random, *, taken: set[str] | None = None
) -> tuple[str, str]:
    """Return a plausible (title, body) for a topic in the demo space `space_key`.

    With `taken`, draw again while the title is in it (at most TITLE_DRAWS
    times), then add the title to it, so titles seldom repeat.
    """
    for _ in range(TITLE_DRAWS):
        title, body = _draw_topic_text(space_key, rng)
        if taken is None or title not in taken:
            break
    if taken is not None:
        taken.add(title)
    return title, body


def _draw_topic_text(space_key: str, rng: random.Random) -> tuple[str, str]:
    if space_key == "ideas":
        title = rng.choice(IDEAS)
        body = _fill(
            "It would save us time with {feature_lower}. {count} people on our "
            "side would use it every week.",
            rng,
        )
    elif space_key == "integrations":
        tool = rng.choice(TOOLS)
        detail = _question_detail(rng)
        title = rng.choice(
            [
                f"{tool} connector: {rng.choice(PROBLEMS)} {detail}",
                f"Syncing {tool} fields into our reports {detail}",
                f"How do you map {tool} accounts to workspaces {detail}?",
            ]
        )
        body = _fill(rng.choice(CONTEXT_SENTENCES), rng)
    elif space_key == "team":
        title = f"{rng.choice(TEAM_TOPICS)} ({rng.choice(MONTHS)})"
        body = "Let's agree on this here before the next team meeting."
    elif space_key == "announcements":
        title = rng.choice(ANNOUNCEMENTS)
        body = "Read the details below, and reply here with questions."
    else:
        detail = _question_detail(rng)
        title = rng.choice(
            [
                f"How do I {rng.choice(TASKS)} {detail}?",
                f"Is there a way to {rng.choice(TASKS)} {detail}?",
                f"{rng.choice(FEATURES)}: {rng.choice(PROBLEMS)} {detail}",
                f"Best practice to {rng.choice(TASKS)} {detail}?",
            ]
        )
        sentences = rng.sample(CONTEXT_SENTENCES, k=2)
        body = " ".join(_fill(s, rng) for s in sentences)
    return title, body


def reply_text(*, is_own_topic: bool, rng: random.Random) -> str:
    """Return the body of a reply. Replies by the topic's author thank the others."""
    if is_own_topic:
        return rng.choice(OWN_TOPIC_REPLIES)
    sentences = rng.sample(REPLY_SENTENCES, k=rng.choice([1, 1, 2]))
    return " ".join(_fill(s, rng) for s in sentences)
