"""Start and stop the real servers the demo and tests use, on loopback only."""
