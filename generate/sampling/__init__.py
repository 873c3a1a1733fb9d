"""Sampling: options verified once, logit filters, the fused step network, the compiled
loop, stream text (stops, limits, warm-up), constraint automata, and loading a run to sample.

Read in this order: `options` (what a user asks, checked and resolved),
`generator` (load a run, sample, record), `loop` (the compiled loop),
`network`, `filters`, `constraints` and `streams`.
"""
