"""One path from a request to a file: a loaded model, its requests, their filters, records and writes.

`loaded.LoadedModel` holds a run's network once and serves any number of
sample and score requests; `request.prepare` checks a request before anything
loads; `filters` decide which samples are kept. `generate sample`, job files,
`generate write` and the Python API (`generate.load`) all go this way.
"""
