"""The shared contract between app, worker and CLI: schema, settings, database, rules and limits.

app/ and worker/ both import this package and never each other; it imports neither of them.
"""
