"""Application detection: which codes a job ran, from its processes and staff rules."""
