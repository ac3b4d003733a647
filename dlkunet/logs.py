"""Log files that people and programs can both read.

Each line is ``[YYYY-mm-dd HH:MM:SS.mmm] message``, the timestamp format of the public
release, so its log-parsing tools and ours read the same files. Only rank 0 of a distributed
run writes.
"""

import logging
import sys
from pathlib import Path

LOG_FORMAT = "[%(asctime)s.%(msecs)03d] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def setup_logging(log_path, name="dlkunet", enabled=True, mode="a"):
    """Return a logger writing to ``log_path`` (appending) and to stdout.

    Args:
        log_path: the log file; its folder is created.
        name: the logger's name (one per script).
        enabled: False gives a logger that writes nothing (non-zero ranks).
        mode: ``"a"`` appends, as the release's logs do over repeated runs.
    """
    logger = logging.getLogger(name)
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.INFO if enabled else logging.CRITICAL + 1)
    if not enabled:
        return logger
    formatter = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    for handler in (logging.FileHandler(log_path, mode=mode), logging.StreamHandler(sys.stdout)):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger
