"""Helpers for the network tests: a `heptool listen` subprocess, test TLS certificates.

Everything stays on loopback; every wait has a timeout; every process started here is
stopped by its pid.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
_LISTENING = re.compile(r"^listening on ((udp|tcp|tls)://\S+)$")


def heptool_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "heptool", *args]


class ListenProcess:
    """``heptool listen ARGS`` in a subprocess; ``urls`` are what it printed it listens on."""

    def __init__(self, *args: str, expect: int = 1, timeout: float = 15.0,
                 stdout: int | None = subprocess.PIPE) -> None:
        self.proc = subprocess.Popen(heptool_cmd("listen", *args), stdout=stdout,
                                     stderr=subprocess.PIPE, cwd=ROOT)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.stderr_lines: list[str] = []
        self.stdout_lines: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._pump_err, daemon=True).start()
        if stdout == subprocess.PIPE:
            threading.Thread(target=self._pump_out, daemon=True).start()
        self.urls: list[str] = []
        deadline = time.monotonic() + timeout
        while len(self.urls) < expect:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise AssertionError(f"listen did not start: {self.stderr_lines}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"listen exited: {self.stderr_lines}")
            m = _LISTENING.match(line)
            if m:
                self.urls.append(m.group(1))

    def _pump_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stderr_lines.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _pump_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout_lines.put(raw)
        self.stdout_lines.put(None)

    def url(self, scheme: str) -> str:
        return next(u for u in self.urls if u.startswith(scheme + "://"))

    def read_records(self, n: int, timeout: float = 15.0) -> list[bytes]:
        out: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = self.stdout_lines.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                break
            out.append(line)
        return out

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
        rc = self.wait(timeout)
        time.sleep(0.05)  # let the stderr pump finish
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


#: heptool's CLI with a stderr that sends the process SIGTERM the moment a line holding
#: MARK is written: what a script that waits for a ready line and then signals does, at
#: the worst moment, deterministically (argv[1] is MARK, the rest heptool's arguments)
_SIGTERM_AT = r"""
import os, signal, sys

class Stderr:
    def __init__(self, f, mark):
        self.f, self.mark = f, mark
    def write(self, s):
        n = self.f.write(s)
        if self.mark in s:
            self.f.flush()
            os.kill(os.getpid(), signal.SIGTERM)
        return n
    def __getattr__(self, name):
        return getattr(self.f, name)

sys.stderr = Stderr(sys.stderr, sys.argv[1])
from heptool.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_sigterm_at(mark: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """``heptool ARGS``, sent SIGTERM by itself as it writes the stderr line holding ``mark``."""
    return subprocess.run([sys.executable, "-c", _SIGTERM_AT, mark, *args], check=False,
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def run_heptool(*args: str, timeout: float = 60.0, **kw: object) -> subprocess.CompletedProcess:
    return subprocess.run(heptool_cmd(*args), check=False, capture_output=True, timeout=timeout, cwd=ROOT,
                          **kw)  # type: ignore[call-overload]


def hep_packets(path: str | Path) -> list[bytes]:
    """The HEP packets of a capture or stream, in order (bytes)."""
    from heptool.capture.inputs import iter_input

    return [p.data for p in iter_input(str(path))]


def make_cert(directory: Path, name: str = "server", ca: tuple | None = None) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/::1/localhost (self-signed, or signed by ``ca``):
    (cert.pem, key.pem). Uses ``cryptography``; falls back to the openssl CLI."""
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            import pytest

            pytest.skip("neither the cryptography package nor openssl is installed")
        assert ca is None, "the openssl fallback makes self-signed certificates only"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1",
                        "-keyout", str(key_path), "-out", str(cert_path)],
                       check=True, capture_output=True, timeout=30)
        return cert_path, key_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=2))
               .add_extension(x509.SubjectAlternativeName([
                   x509.DNSName("localhost"),
                   x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                   x509.IPAddress(ipaddress.ip_address("::1"))]), critical=False))
    if ca is None:
        builder = builder.issuer_name(subject).add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True)
        cert = builder.sign(key, hashes.SHA256())
    else:
        ca_cert, ca_key = ca
        cert = builder.issuer_name(ca_cert.subject).sign(ca_key, hashes.SHA256())
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def load_ca(cert_path: Path, key_path: Path) -> tuple:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return (x509.load_pem_x509_certificate(cert_path.read_bytes()),
            serialization.load_pem_private_key(key_path.read_bytes(), None))
