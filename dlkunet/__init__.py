"""What the DLKUNet training and testing scripts share.

Modules, one job each: ``errors`` (the error types the scripts turn into one line),
``checkpoint`` (saving and loading weights safely), ``logs`` (log files), ``inference``
(volume prediction slice by slice); the data, loss, metric, training-loop and log-parsing
modules sit beside them.
"""
