"""Fitting and measuring models: planning a run (`plan`), the stateful truncated-BPTT training
loop with exact resumption (`trainer`, its state a `state.TrainingState`), and validation and
text scores in nats and bits (`scoring`).
"""
