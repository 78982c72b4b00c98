"""A request to stop, from SIGINT or SIGTERM, recorded for the whole process.

The `nanotasks` command's handler records the signal, then raises Interrupted. Code that
decides what happens to a file asks `received()` as well as catching the exception: an
exception raised at an unlucky moment can be swallowed on the way (pyarrow's lazy import of
pandas catches one raised inside it), and the record still says the user asked to stop. So a
Writer never renames its file into place once a signal is recorded.
"""

import signal

_received: list[int] = []  # the signals recorded in this process, in order


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: cleaned up like Ctrl-C, and reported by its own exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def record(signum: int) -> None:
    """Note that `signum` asked this process to stop."""
    _received.append(signum)


def received() -> int | None:
    """The first signal recorded in this process, or None."""
    return _received[0] if _received else None


def check() -> None:
    """Raise Interrupted if a signal was recorded, whether or not its exception got here."""
    if _received:
        raise Interrupted(_received[0])
