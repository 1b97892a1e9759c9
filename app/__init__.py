"""iosignal web service: REST API, live stream and dashboard over the shared database."""
