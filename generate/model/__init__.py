"""The model and its files: configs, the stateful network builder, run directories and
checkpoints, and `backend`, the one place that knows which Keras backend is running.
"""
