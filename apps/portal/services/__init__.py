"""Every write the portal makes, one module per area."""
