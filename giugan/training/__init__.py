"""Training layer: the LightningModule, its evaluation and prediction glue, callbacks, loggers.

Importing this package imports Lightning; the operators, networks and ``giugan profile`` do not.
"""
