"""``--dask ADDR`` where no Dask scheduler answers: one line, exit 2, within --dask-timeout; a bad
--dask-timeout is named as such, not blamed on the address.

The fake servers listen on 127.0.0.1 only, in a thread of this process, and stop by themselves
(when the test leaves them, or after 30 s at most)."""

import contextlib
import socket
import threading
import time

import pytest

from test_cli_count import _error  # main(['count', ...]): one line, exit 2
from test_engine import NET

ARGS = [NET, "--format", "e2m1", "--free", "L1.W[0,0]", "L1.b[0]", "--method", "exhaustive",
        "--no-store", "--chunk-size", "50"]
HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@contextlib.contextmanager
def fake_server(answer: bytes | None):
    """A TCP server on 127.0.0.1 that accepts connections and then says nothing (``answer`` None)
    or reads the request and replies ``answer``. Yields its tcp:// address."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    conns = []

    def serve():
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conns.append(conn)
            if answer is not None:
                conn.settimeout(1)
                with contextlib.suppress(OSError):
                    conn.recv(65536)
                    conn.sendall(answer)
        for conn in conns:
            conn.close()
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)


def test_server_that_never_answers_is_left_within_the_timeout(capsys):
    pytest.importorskip("distributed")
    with fake_server(None) as address:
        t = time.monotonic()
        msg = _error(capsys, *ARGS, "--dask", address, "--dask-timeout", "1")
        waited = time.monotonic() - t
    assert f"Dask scheduler {address} did not answer within 1 s" in msg and "handshake" in msg
    # A hang guard, not a speed claim: distributed alone waits until the server gives up (30 s).
    assert waited < 20


def test_server_answering_http_is_one_line(capsys):
    """An HTTP reply decodes as a Dask frame of about 3 EiB: a MemoryError, before the fix a
    traceback."""
    pytest.importorskip("distributed")
    with fake_server(HTTP_400) as address:
        msg = _error(capsys, *ARGS, "--dask", address, "--dask-timeout", "5")
    assert f"{address} does not answer as a Dask scheduler" in msg and "dask scheduler" in msg
    assert "is not a Dask address" not in msg


def test_server_answering_garbage_is_one_line(capsys):
    pytest.importorskip("distributed")
    with fake_server(b"\xff" * 64) as address:
        msg = _error(capsys, *ARGS, "--dask", address, "--dask-timeout", "5")
    assert f"{address} does not answer as a Dask scheduler" in msg


@pytest.mark.parametrize("timeout", ["-1", "0", "nan", "inf"])
def test_bad_dask_timeout_is_named(capsys, timeout):
    msg = _error(capsys, *ARGS, "--dask", "tcp://127.0.0.1:9", "--dask-timeout", timeout)
    assert "--dask-timeout must be a positive number of seconds" in msg and timeout in msg
    assert "address" not in msg


def test_bad_dask_timeout_is_refused_without_dask(capsys):
    msg = _error(capsys, *ARGS, "--dask-timeout", "-1")
    assert msg.startswith("fpad: error: --dask-timeout must be a positive number of seconds")
