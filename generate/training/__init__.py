"""Fitting and measuring models: the stateful truncated-BPTT training loop with exact
resumption (`trainer`), and validation and text scores in nats and bits (`scoring`).
"""
