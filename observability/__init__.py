"""Metrics, traces and structured logs of the API and the worker."""
