"""Co-writing in the terminal: a writer picks among a model's candidate continuations.

Read in this order: `session` (the state machine of take, reroll, undo, redo,
edit and replay, with no model and no terminal), `candidates` (one batch of
continuations per draw, cut at natural boundaries, from a cached text state),
`write` (the library entry points: a session on the terminal, and replay from
a sidecar) and `app` (the prompt_toolkit screen).
"""
