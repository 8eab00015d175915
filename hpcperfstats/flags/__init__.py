"""Job flags: staff-written rules (data) evaluated over job metrics."""
