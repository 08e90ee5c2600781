"""Reads that the portal's pages, API and reports share, one module per area."""
