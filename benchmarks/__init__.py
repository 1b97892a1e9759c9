"""The measurement commands that are not part of running iosignal: `iosignal loadbench`
(loadbench.py), `iosignal applybench` (applybench.py) and `iosignal observe --bench`
(observebench.py, with idlevm.py, the idle VM it starts by the dozen).

They stand above app, worker and observer and below the command line: they drive the runtime
modules through their public parameters (a benchmark that needs a module to behave otherwise
gives it an argument, never swaps its functions), and no runtime module imports them.
`iosignal bench` is not here: the worker runs it as a service job (worker/bench.py).
"""
