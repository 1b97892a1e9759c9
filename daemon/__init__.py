"""The floor both long-running processes stand on: `iosignal worker` and `iosignal observe`.

What each needs and neither owns: the sampling tick (`ticker`), the buffered writer that
persists ticks through database outages (`writer`), the retention pass's schedule and minute
arithmetic (`retention`), database error sentences (`dberrors`) and signal handling
(`signals`). It imports only `contract`, so the observer can run without loading the worker's
KVM layer and the worker without loading the observer's BPF.
"""
