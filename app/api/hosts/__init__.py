"""`/hosts`: every host and its VMs, each with its busiest doorbells."""
