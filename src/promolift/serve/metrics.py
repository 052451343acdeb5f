"""Prometheus metrics of one app (own registry, so several apps can live in one process).

With ``--workers N`` each worker process counts for itself; scrape them through a
``PROMETHEUS_MULTIPROC_DIR`` setup or run one worker per container.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["ServeMetrics"]

LATENCY_BUCKETS = (.001, .002, .003, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .25, .5, 1, 2.5)


class ServeMetrics:
    """Requests by route/status, latency, decisions by arm, budget, model version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("promolift_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("promolift_request_duration_seconds", "Request latency by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.decisions = Counter("promolift_decisions", "Decisions by campaign and arm",
                                 ["campaign", "arm"], registry=r)
        self.budget_limited = Counter("promolift_budget_limited", "Decisions turned to control because "
                                      "the budget could not pay for them", ["campaign"], registry=r)
        self.budget_spent = Gauge("promolift_budget_spent_dollars", "Expected cost committed",
                                  ["campaign"], registry=r)
        self.budget_remaining = Gauge("promolift_budget_remaining_dollars", "Budget left to commit",
                                      ["campaign"], registry=r)
        self.model_info = Gauge("promolift_model_info", "The model version serving (value 1)",
                                ["version", "plan"], registry=r)
        self.model_loads = Counter("promolift_model_loads", "Model load attempts by outcome",
                                   ["outcome"], registry=r)

    def set_model(self, version: str, plan: str | None) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version, plan=plan or "").set(1)

    def set_budget(self, campaign: str, spent: float, budget: float | None) -> None:
        self.budget_spent.labels(campaign=campaign).set(spent)
        if budget is not None:
            self.budget_remaining.labels(campaign=campaign).set(max(budget - spent, 0.0))
