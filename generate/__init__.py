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


def train(run, sources=(), *, resume: bool = False, show_progress: bool = False, **options):
    """Trains a model on `sources` into the directory `run`, as `generate train` does; `resume=True` continues it.

    Takes `generate train`'s options as keywords (`epochs=20`, `units=512`, `kind="music"`, `max_minutes=5`,
    `local_workers=2`, ...); with `resume`, those given apply (or are refused) as on `--resume`. Returns a
    `generate.training.plan.TrainResult`: the run, epochs and steps done, the best validation loss, finished.

    Raises:
        generate.errors.OptionError: an unknown keyword or a bad value, named as the keyword.
        generate.errors.UsageError, generate.errors.CorpusError: a bad run directory or corpus.
    """
    from .training.launch import train_with_keywords  # TensorFlow loads here, never on `import generate`

    return train_with_keywords(run, sources, resume, show_progress, **options)
