"""Host data: raw text -> frames -> per-interval rates and gauges, series and aggregates."""
