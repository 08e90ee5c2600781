"""Delivery of play steps to members and staff.

In-app notifications, emails with an unsubscribe link, CSM tasks and signed
outbound webhooks. `handlers` registers one play action for each; the
other modules hold the services, selectors and pages behind them.
"""
