"""A deterministic synthetic cluster: job plan with ground truth, raw stats, accounting."""
