"""The model and its files: configs, the stateful network builder and its fused single-step
form (`network`, which the sampler runs), run directories (`rundir`), checkpoints (`checkpoint`),
exports (`export`), and `backend`,
the one place that knows which Keras backend is running.
"""
