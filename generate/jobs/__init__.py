"""Jobs: what a user asks to be made, and making it safely.

`sample` serves one `generate sample` request. A job file (`generate run`)
holds many: `schema` reads and type-checks it, `schedule` validates every
job before any runs and locks the file, `runner` makes one job's outputs
(filters, redraws, atomic writes), `naming` derives output names and seeds
from the run id, and `manifest` records what was made and prunes old outputs.
"""
