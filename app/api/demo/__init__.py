"""The demo workload and the `/demo` routes."""
