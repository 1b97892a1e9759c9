"""`GET /metrics`: the Prometheus exposition and its collectors."""
