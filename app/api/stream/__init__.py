"""`/api/stream`: Server-Sent Events of each VM's ticks, fed by one shared poller."""
