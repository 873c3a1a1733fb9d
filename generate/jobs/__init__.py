"""Jobs: job files for unattended runs, and making their outputs safely.

A job file (`generate run`) holds many requests: `schema` reads and type-checks it, `schedule` validates every
job before any runs and locks the file, `runner` makes one job's outputs
(each a request through the pipeline: filters, redraws, atomic writes), `naming` derives output names and seeds
from the run id, and `manifest` records what was made and prunes old outputs.
"""
