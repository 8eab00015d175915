"""Dagster code location of hpcperfstats: thin assets over ``hpcperfstats``."""
