"""Sampling: options verified once, logit filters, the compiled loop over a model's fused
step network, stream text (stops, limits, warm-up), constraint automata, and loading a run to sample.

Read in this order: `options` (what a user asks), `resolve` (the one place
that checks it and fills in the run's defaults, giving a `config`),
`generator` (load a run, sample, record), `loop` (the compiled loop),
`filters`, `constraints` (and the table builder `explore`) and `streams`;
`python/` is the plug-in that keeps sampled Python valid. The step network itself is
`model.network`, beside the builder, since a cell type is both.
"""
