"""VMs and their workers' liveness, and the `/vms` routes."""
