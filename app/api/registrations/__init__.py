"""Registrations: iosignal's own (asked of the worker) and those the observer saw other VMMs
make; the `/ioeventfds` routes."""
