"""Start-up registrations of the portal, one module per area."""
