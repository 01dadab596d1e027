"""A registry's metrics for ``prometheus_client`` (install
``module-registry[prometheus]``).

>>> from prometheus_client import REGISTRY                    # doctest: +SKIP
>>> from module_registry.prometheus import RegistryCollector  # doctest: +SKIP
>>> REGISTRY.register(RegistryCollector(registry))            # doctest: +SKIP

An existing ``/metrics`` endpoint (``prometheus_client.start_http_server``,
a WSGI or ASGI app) then shows the registry's metrics beside its own; each
scrape reads them afresh. Importing ``module_registry`` never imports this
module or ``prometheus_client``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["RegistryCollector"]


def _bound(upper: float) -> str:
    return "+Inf" if math.isinf(upper) else repr(upper)


class RegistryCollector(Collector):
    """The metrics of ``registry`` (a ``ModuleRegistry``, or a view whose
    principal has ``admin`` on ``*``) as ``prometheus_client`` metric
    families: counters, gauges and histograms, named and labelled as
    ``registry.metrics_text()`` writes them."""

    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def describe(self) -> Iterator[Metric]:
        """The families without samples: the names ``REGISTRY.register``
        checks for clashes."""
        for name, family in self._registry.metrics().items():
            yield _family(name, family, with_samples=False)

    def collect(self) -> Iterator[Metric]:
        """The families with their samples as the registry holds them now."""
        for name, family in self._registry.metrics().items():
            yield _family(name, family, with_samples=True)


def _family(name: str, family: dict[str, Any], with_samples: bool) -> Metric:
    samples = family["samples"] if with_samples else []
    help_text = family["help"]
    labels = list(samples[0]["labels"]) if samples else None
    metric: Any
    if family["type"] == "counter":
        metric = CounterMetricFamily(name, help_text, labels=labels)
        for s in samples:
            metric.add_metric(list(s["labels"].values()), s["value"])
    elif family["type"] == "gauge":
        metric = GaugeMetricFamily(name, help_text, labels=labels)
        for s in samples:
            metric.add_metric(list(s["labels"].values()), s["value"])
    else:
        metric = HistogramMetricFamily(name, help_text, labels=labels)
        for s in samples:
            buckets = [(_bound(upper), count) for upper, count in s["buckets"]]
            metric.add_metric(list(s["labels"].values()), buckets, s["sum"])
    result: Metric = metric
    return result
