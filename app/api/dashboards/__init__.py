"""Saved dashboards and panel data: each metric's series over one window, and the routes."""
