"""Jobs: Slurm accounting, per-job series, metrics and coverage."""
