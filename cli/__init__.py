"""The `iosignal` command: it sits above the app, the worker and the contract."""
