"""Character-level text, code and music generation with stateful Keras RNNs.

Importing this package is cheap: TensorFlow and Keras load only when a model
is built or loaded, so `generate --help` and `generate info` stay instant.
"""

__version__ = "0.1.0"


def load(name_or_path, checkpoint: str = "best"):
    """A run directory or a shipped model's name, loaded once for any number of samples and scores.

    Returns a `generate.pipeline.loaded.LoadedModel`; its `sample(**options)`
    takes a job file's keys as keywords and returns the text `generate sample`
    prints for the same options and seed.

    Raises:
        generate.errors.UsageError: not a run, or a bad checkpoint choice.
        generate.errors.CheckpointError: a damaged checkpoint.
    """
    from .pipeline.loaded import load as load_model  # TensorFlow loads here, never on `import generate`

    return load_model(name_or_path, checkpoint)
