"""Character-level text, code and music generation with stateful Keras RNNs.

Importing this package is cheap: TensorFlow and Keras load only when a model
is built or loaded, so `generate --help` and `generate info` stay instant.
"""

__version__ = "0.1.0"
