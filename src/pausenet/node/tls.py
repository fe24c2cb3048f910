"""Optional TLS and mutual TLS for a node's servers and clients, and a local test CA.

A node config may have a `[tls]` table:

    [tls]
    cert = "../tls/lab-a.crt"      # this node's certificate chain (PEM)
    key = "../tls/lab-a.key"       # its private key (PEM, mode 0600)
    ca = "../tls/ca.crt"           # the CA that signs every node's certificate (PEM)
    client_auth = true             # require client certificates (mutual TLS) on both servers

With it, the public (gossip, oversight) and admin servers speak TLS, the node's gossip client
verifies peers against `ca` and presents its own certificate. Member identity on the gossip API
is still proven by the member key (docs/protocol.md §12.5); TLS adds confidentiality and protects
sessions from an attacker on the path.

`make_test_ca` writes a CA and one certificate per name, valid for 127.0.0.1, ::1 and localhost
(and any extra `hosts`, e.g. test hosts in network namespaces): for local clusters and tests,
never for production. It needs the `cryptography` package
(`pip install 'pausenet[tls]'`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from pausenet.core.files import write_atomic
from pausenet.errors import ConfigError, PausenetError

__all__ = ["TlsConfig", "TlsFiles", "client_tls", "enable_tls_for_federation", "make_test_ca"]


@dataclass(frozen=True)
class TlsConfig:
    cert: Path
    key: Path
    ca: Path
    client_auth: bool = False

    def read(self) -> TlsFiles:
        """Read the PEM files; a missing or unreadable one is a one-line ConfigError."""
        return TlsFiles(
            cert=_read(self.cert, "tls.cert"),
            key=_read(self.key, "tls.key", private=True),
            ca=_read(self.ca, "tls.ca"),
            client_auth=self.client_auth,
        )


@dataclass(frozen=True)
class TlsFiles:
    ca: bytes
    cert: bytes | None = None  # a server always has one; a client only for mutual TLS
    key: bytes | None = None
    client_auth: bool = False


def client_tls(ca: Path | None, cert: Path | None, key: Path | None) -> TlsFiles | None:
    """TLS settings for a command-line client, from --tls-ca [--tls-cert --tls-key]."""
    if ca is None:
        if cert is not None or key is not None:
            raise ConfigError(
                "--tls-cert and --tls-key need --tls-ca (the CA to verify nodes with)"
            )
        return None
    if (cert is None) != (key is None):
        raise ConfigError("give both --tls-cert and --tls-key for mutual TLS, or neither")
    return TlsFiles(
        ca=_read(ca, "--tls-ca"),
        cert=_read(cert, "--tls-cert") if cert is not None else None,
        key=_read(key, "--tls-key", private=True) if key is not None else None,
    )


def _read(path: Path, what: str, *, private: bool = False) -> bytes:
    try:
        if private and path.stat().st_mode & 0o077:
            raise ConfigError(f"{what} {path}: readable by others; run 'chmod 600 {path}'")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} {path}: file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read it: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{what} {path}: not a PEM file")
    return data


def make_test_ca(
    out_dir: Path, names: list[str], *, days: int = 365, hosts: Sequence[str] = ()
) -> dict[str, TlsConfig]:
    """Write ca.crt and <name>.crt/.key for each name into out_dir; returns each name's config.

    Every certificate is valid for the loopback names and for each of `hosts` (IP addresses or
    DNS names)."""
    extra = [_san_entry(h) for h in hosts]
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:
        raise PausenetError(
            "making a test CA needs the 'cryptography' package: pip install 'pausenet[tls]'"
        ) from exc

    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pausenet local test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = out_dir / "ca.crt"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    write_key(out_dir / "ca.key", ca_key)

    san = x509.SubjectAlternativeName(
        [
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
            *(
                x509.IPAddress(ipaddress.ip_address(v)) if kind == "ip" else x509.DNSName(v)
                for kind, v in extra
            ),
        ]
    )
    out: dict[str, TlsConfig] = {}
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        crt, kp = out_dir / f"{name}.crt", out_dir / f"{name}.key"
        crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        write_key(kp, key)
        out[name] = TlsConfig(cert=crt, key=kp, ca=ca_path, client_auth=True)
    return out


def _san_entry(host: str) -> tuple[str, str]:
    """('ip', address) or ('dns', name) for a certificate's subject alternative names."""
    try:
        return "ip", str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > 253 or not _DNS_RE.fullmatch(host):
        raise ConfigError(f"--host {host!r}: give an IP address or a DNS name")
    return "dns", host


_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DNS_RE = re.compile(rf"{_DNS_LABEL}(?:\.{_DNS_LABEL})*")


def enable_tls_for_federation(
    fed_dir: Path, *, client_auth: bool = True, hosts: Sequence[str] = ()
) -> Path:
    """Make a test CA under fed_dir/tls and add a [tls] table to every node config there."""
    configs = sorted((fed_dir / "node_configs").glob("*.toml"))
    if not configs:
        raise ConfigError(
            f"{fed_dir}: no node_configs/*.toml; run 'pausenet federation init' first"
        )
    texts = {}
    for c in configs:
        text = c.read_text(encoding="utf-8")
        try:
            has_tls = "tls" in tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{c}: not valid TOML: {exc}") from exc
        if has_tls:
            raise ConfigError(f"{c}: already has a [tls] table")
        texts[c] = text
    tls_dir = fed_dir / "tls"
    made = make_test_ca(tls_dir, [c.stem for c in configs], hosts=hosts)
    for c, text in texts.items():
        t = made[c.stem]
        rel = os.path.relpath(tls_dir, c.parent)
        table = {
            "cert": f"{rel}/{t.cert.name}",
            "key": f"{rel}/{t.key.name}",
            "ca": f"{rel}/ca.crt",
            "client_auth": client_auth,
        }
        # the config's own text (and comments) stay; tomli-w writes the table, paths escaped
        try:
            write_atomic(c, text.rstrip("\n") + "\n\n" + tomli_w.dumps({"tls": table}))
        except OSError as exc:
            raise ConfigError(f"{c}: cannot write it: {exc.strerror}") from exc
    return tls_dir
