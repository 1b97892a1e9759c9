"""Process signals: SIGTERM/SIGINT ask a daemon to stop; a second one forces it."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any


def install_signal_handlers(stop: threading.Event, log: logging.Logger) -> None:
    """SIGTERM/SIGINT set `stop`; a second one forces exit (like uvicorn's handle_exit).

    The handler only sets an Event: the threads finish their last tick and flush on their own.
    `log` is the daemon's logger, so the lines say which process stopped.
    """

    def handle(signum: int, _frame: Any) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
