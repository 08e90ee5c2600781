"""Lifecycle plays: triggers, audiences, enrolments and the step runner.

- `triggers` and `schedules` decide who a play enrols: after each recorded
  event, and on a beat schedule for time-based triggers.
- `audience` applies a play's filters and its holdout group.
- `services` writes enrolments (once per play, subject and occurrence) and
  changes a play's status.
- `runner` runs an enrolment's steps, one database transaction per step.
- `dispatch` hands work to the Celery tasks after commit.
- `selectors` reads what admin shows: the audience preview.
"""
