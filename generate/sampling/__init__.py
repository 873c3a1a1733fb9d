"""Sampling: options verified once, logit filters, the fused step network, the compiled
loop, stream text (stops, limits, warm-up), constraint automata, and loading a run to sample.

Read in this order: `options` (what a user asks), `resolve` (the one place
that checks it and fills in the run's defaults, giving a `config`),
`generator` (load a run, sample, record), `loop` (the compiled loop),
`network`, `filters`, `constraints` and `streams`.
"""
