"""A VM's workload: versions of the doorbells its guest rings, and the `/workload` routes."""
