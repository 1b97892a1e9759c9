"""`/vms/{id}/exits`: userspace exits per address, the observer's writes beside them, and the
diagnosis of each doorbell."""
