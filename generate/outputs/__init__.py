"""Outputs: the writer registry, one writer per file format, each atomic with a JSON sidecar."""
