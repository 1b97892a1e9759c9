"""`/vms/{id}/latency`: each in-kernel doorbell's consumer and the percentiles of its stages, and
the same as Prometheus histograms for /metrics."""
