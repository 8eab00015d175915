"""Asset definitions, one module per pipeline stage."""
