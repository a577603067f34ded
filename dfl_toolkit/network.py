"""The one place that touches the network: probe a host with a hard deadline, then download.

Datasets (``data/online.py``) and pretrained weights (``features/backbones.py``) both go through
:func:`fetch`, so without a network every download fails within seconds, never hangs, and
``DFL_OFFLINE=1`` turns every download off at once.
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TIMEOUT_ENV, OFFLINE_ENV = "DFL_NETWORK_TIMEOUT", "DFL_OFFLINE"


class NetworkUnavailable(Exception):
    """A download that cannot happen; ``str(err)`` says why (callers turn it into their own clear error)."""


def offline() -> bool:
    """True when ``DFL_OFFLINE`` is set: never try the network."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def network_timeout() -> float:
    """Seconds to wait for a host to answer (``DFL_NETWORK_TIMEOUT``, default 8)."""
    return float(os.environ.get(TIMEOUT_ENV, "8"))


def probe(url: str, timeout: float | None = None) -> str | None:
    """None when ``url``'s host answers HTTP within ``timeout`` seconds, else why not.

    Runs in a daemon thread so that even a hanging DNS lookup cannot block longer than the deadline.

    Example:
        >>> probe("http://127.0.0.1:9/", timeout=1)  # nothing listens there
        'URLError: <urlopen error [Errno 111] Connection refused>'
    """
    timeout = network_timeout() if timeout is None else timeout
    result: list[str | None] = []

    def attempt() -> None:
        try:
            req = urllib.request.Request(url, method="HEAD")
            with urllib.request.urlopen(req, timeout=timeout):
                result.append(None)
        except urllib.error.HTTPError:
            result.append(None)  # the server answered: the network works
        except Exception as err:  # noqa: BLE001 - any failure means "no usable network"
            result.append(f"{type(err).__name__}: {err}")

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return result[0] if result else f"no answer from {url} within {timeout:.0f} s"


@contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Every socket opened in the block times out after ``seconds`` (downloads that stall do not hang)."""
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(old)


def fetch(url: str, download: Callable[[], None], what: str = "the files") -> None:
    """Run ``download()`` (which reads ``url``) unless offline or ``url``'s host does not answer in time.

    Raises :class:`NetworkUnavailable` saying why, within about ``DFL_NETWORK_TIMEOUT`` seconds.

    Example:
        >>> fetch(url, lambda: urllib.request.urlretrieve(url, dest))
    """
    if offline():
        raise NetworkUnavailable(f"{OFFLINE_ENV} is set and {what} are not there yet")
    reason = probe(url)
    if reason is not None:
        raise NetworkUnavailable(reason)
    try:
        with socket_timeout(max(30.0, network_timeout())):
            download()
    except Exception as err:  # noqa: BLE001 - report any download failure the same clear way
        raise NetworkUnavailable(f"download failed ({type(err).__name__}: {err})") from err
