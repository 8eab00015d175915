"""Dagster code location of hpcperfstats: thin assets over ``hpcperfstats``."""

import warnings

from dagster import BetaWarning

# Filtered once, here, for features this code location relies on:
# - ``backfill_policy`` (beta): it is how a catch-up or backfill is split into
#   bounded runs (``automation.py``); without the filter Dagster repeats the
#   warning for every asset and every process that loads the definitions.
# - ``owners`` of ``SensorDefinition`` (beta): we set none; Dagster passes an
#   empty list itself when it binds resources to our sensors.
warnings.filterwarnings("ignore", category=BetaWarning, message="Parameter `backfill_policy`")
warnings.filterwarnings("ignore", category=BetaWarning,
                        message="Parameter `owners` of initializer `SensorDefinition")
