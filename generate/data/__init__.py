"""Corpora in, ids out: resolving and decoding sources, the built-in corpus registry,
vocabularies, the memory-mapped id cache, stream batching and the corpus copy index.

Nothing here knows about models; music sources are parsed by `generate.music`.
"""
