"""Fixtures of the demo-cluster tests: the default cluster, generated and parsed once."""

from __future__ import annotations

import pytest
from demo_helpers import Parsed, parse_cluster
from hpcperf_demo.cluster import DemoConfig


@pytest.fixture(scope="session")
def demo() -> Parsed:
    return parse_cluster(DemoConfig())
