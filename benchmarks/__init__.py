"""Speed measurements, run by hand (see README); never timed tests."""
