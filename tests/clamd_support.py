"""A clamd of the tests' own: a temporary config and a one-signature database for the EICAR test file.

ClamAV's signature mirrors are not reachable here, and clamd will not start on an empty database,
so the tests write a hash signature (.hdb: md5:size:name) of the EICAR test string, which they
build at run time (it is never committed as a file), and start /usr/sbin/clamd on a unix socket.
Production uses the bureau's own, normally updated clamd (config.yaml publishing.clamd).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
needs_clamd = pytest.mark.skipif(not os.path.exists(CLAMD),
                                 reason="ClamAV's clamd is not installed (apt-get install clamav-daemon; .ci/run does)")


def eicar() -> bytes:
    """The standard EICAR anti-virus test file, assembled here so that no file of it is committed."""
    return b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$" + b"EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _ping(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(path)
            s.sendall(b"zPING\0")
            return s.recv(16).startswith(b"PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def clamd_socket() -> Iterator[str]:
    if not os.path.exists(CLAMD):
        pytest.skip("ClamAV's clamd is not installed (apt-get install clamav-daemon; .ci/run does)")
    # Unix socket paths are limited to ~108 bytes: a short directory of our own.
    root = Path(tempfile.mkdtemp(prefix="gw-clamd-"))
    (root / "db").mkdir()
    data = eicar()
    (root / "db" / "guanwei-test.hdb").write_text(f"{hashlib.md5(data).hexdigest()}:{len(data)}:Guanwei.Test.EICAR\n")  # noqa: S324
    sock = str(root / "clamd.sock")
    (root / "clamd.conf").write_text(
        f"Foreground yes\nDatabaseDirectory {root / 'db'}\nLocalSocket {sock}\nLogFile {root / 'clamd.log'}\n"
        f"PidFile {root / 'clamd.pid'}\nStreamMaxLength 30M\nMaxFileSize 30M\nSelfCheck 3600\n")
    process = subprocess.Popen([CLAMD, "-c", str(root / "clamd.conf")], stdout=subprocess.DEVNULL,  # noqa: S603
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _ping(sock):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "clamd.log").read_text(errors="replace")[-2000:] if (root / "clamd.log").exists() else ""
                pytest.fail(f"clamd did not start: {log}")
            time.sleep(0.2)
        yield sock
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(root, ignore_errors=True)
