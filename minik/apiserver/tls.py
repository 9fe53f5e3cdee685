"""minik's own certificate authority and the API server's certificate.

At first start the server creates a CA and a serving certificate for
127.0.0.1, localhost, the bind address and the names pods use for the API
(`kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
`kubernetes.default.svc.cluster.local`, the `kubernetes` Service's
ClusterIP and the node's address on the pod network, once that network
exists); later starts reuse them, so a kubeconfig stays valid across
restarts. A certificate that lacks a name now wanted is issued anew by the
same CA, and the serving context loads it for the next connections. All of
them are mode 0600. Serving many long-lived connections, the server shrinks
asyncio's per-connection TLS read buffer (`limit_read_buffers`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from asyncio import sslproto
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from minik.home import Home, write_private

VALIDITY = dt.timedelta(days=3650)
READ_BUFFER = 4 * 1024


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "minik"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _create_ca(home: Home) -> None:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("minik-ca"))
        .issuer_name(_name("minik-ca"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    write_private(home.ca_key, _pem_key(key))
    write_private(home.ca_cert, cert.public_bytes(serialization.Encoding.PEM))


def _subject_names(bind: str, extra: Sequence[str] = ()) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for name in ("localhost", "127.0.0.1", bind, *extra):
        try:
            address = ipaddress.ip_address(name)
        except ValueError:
            general: x509.GeneralName = x509.DNSName(name)
        else:
            if address.is_unspecified:
                continue
            general = x509.IPAddress(address)
        if general not in names:
            names.append(general)
    return names


def _create_server_cert(home: Home, bind: str, extra: Sequence[str] = ()) -> None:
    ca_key = serialization.load_pem_private_key(home.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{home.ca_key}: the CA key is not an elliptic-curve key")
    ca_cert = x509.load_pem_x509_certificate(home.ca_cert.read_bytes())
    key = _key()
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("minik-apiserver"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(_subject_names(bind, extra)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    write_private(home.server_key, _pem_key(key))
    write_private(home.server_cert, cert.public_bytes(serialization.Encoding.PEM))


def _covered(home: Home) -> list[x509.GeneralName]:
    cert = x509.load_pem_x509_certificate(home.server_cert.read_bytes())
    return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)


def ensure_certificates(home: Home, *, bind: str, extra: Sequence[str] = ()) -> bool:
    """Create the CA and a serving certificate naming `bind` and `extra` unless usable
    ones exist; True when a new serving certificate was written. One that lacks a
    wanted name is replaced by one naming those it had as well."""
    if not (home.ca_cert.exists() and home.ca_key.exists()):
        _create_ca(home)
        home.server_cert.unlink(missing_ok=True)
    if home.server_cert.exists() and home.server_key.exists():
        had = _covered(home)
        wanted = _subject_names(bind, extra)
        if all(name in had for name in wanted):
            return False
        kept = [str(n.value) for n in had if isinstance(n, x509.DNSName | x509.IPAddress)]
        extra = (*extra, *kept)
    _create_server_cert(home, bind, extra)
    return True


def limit_read_buffers(size: int = READ_BUFFER) -> None:
    """Give every TLS connection of this process a small read buffer.

    asyncio's SSLProtocol allocates a zero-filled read buffer of `max_size`
    (256 KiB) for each connection, resident for the connection's life: 1,000
    idle watch connections held 256 MB in buffers alone. TLS records carry at
    most 16 KiB, and the buffer is refilled as often as the socket is readable,
    so a small one costs only more, smaller reads of a large body.
    """
    if getattr(sslproto.SSLProtocol, "max_size", 0) > size:
        sslproto.SSLProtocol.max_size = size


def server_ssl_context(home: Home) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(home.server_cert, home.server_key)
    return context
