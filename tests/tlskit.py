"""Test PKI made at test time with `cryptography`: a CA, a broker certificate for 127.0.0.1, a client certificate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from responder.sandbox.kafka_jvm import Listener

PEM = serialization.Encoding.PEM


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files a TLS test needs."""

    ca: Path  # the CA certificate clients and broker trust
    broker_keystore: Path  # broker key (PKCS#8) + certificate + CA, for ssl.keystore.type=PEM
    client_cert: Path
    client_key: Path  # encrypted with `client_key_password`
    client_key_password: str
    rogue_ca: Path  # a CA nobody trusts


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey, *,
          ca: bool, sans: list[x509.GeneralName] | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _key_pem(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption())
    return key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, enc)


def make_pki(directory: Path, *, broker_host: str = "127.0.0.1") -> Pki:
    """Write a CA, a broker keystore valid for `broker_host`, a client cert/key and a rogue CA under `directory`."""
    import ipaddress

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("responder-test-ca", ca_key, "responder-test-ca", ca_key, ca=True)
    broker_key = ec.generate_private_key(ec.SECP256R1())
    broker = _cert("broker", broker_key, "responder-test-ca", ca_key, ca=False,
                   sans=[x509.IPAddress(ipaddress.ip_address(broker_host)), x509.DNSName("localhost")])
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("responder-client", client_key, "responder-test-ca", ca_key, ca=False)
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = _cert("rogue-ca", rogue_key, "rogue-ca", rogue_key, ca=True)
    password = "client-key-pw"
    files = {
        "ca.pem": ca.public_bytes(PEM),
        "broker.pem": _key_pem(broker_key) + broker.public_bytes(PEM) + ca.public_bytes(PEM),
        "client.pem": client.public_bytes(PEM),
        "client.key": _key_pem(client_key, password),
        "rogue-ca.pem": rogue.public_bytes(PEM),
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return Pki(ca=directory / "ca.pem", broker_keystore=directory / "broker.pem", client_cert=directory / "client.pem",
               client_key=directory / "client.key", client_key_password=password, rogue_ca=directory / "rogue-ca.pem")


SCRAM_USER = "alice"
SCRAM_PASSWORD = "alice-secret"
PLAIN_JAAS = (f'org.apache.kafka.common.security.plain.PlainLoginModule required user_{SCRAM_USER}='
              f'"{SCRAM_PASSWORD}";')
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


def secure_listeners(pki: Pki) -> list[Listener]:
    """SSL (client certificate required), SASL_SSL and SASL_PLAINTEXT (SCRAM-SHA-512/256 and PLAIN) listeners."""
    tls = {"ssl.keystore.type": "PEM", "ssl.keystore.location": str(pki.broker_keystore),
           "ssl.truststore.type": "PEM", "ssl.truststore.location": str(pki.ca)}
    sasl = {"sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            "scram-sha-512.sasl.jaas.config": SCRAM_JAAS, "scram-sha-256.sasl.jaas.config": SCRAM_JAAS,
            "plain.sasl.jaas.config": PLAIN_JAAS}
    return [Listener("SSL", "SSL", {**tls, "ssl.client.auth": "required"}),
            Listener("SASL_SSL", "SASL_SSL", {**tls, **sasl}),
            Listener("SASL_PLAINTEXT", "SASL_PLAINTEXT", sasl)]


def scram_credentials() -> list[str]:
    """`--add-scram` arguments for the format step: the test user for both SCRAM mechanisms."""
    return [f"SCRAM-SHA-512=[name={SCRAM_USER},password={SCRAM_PASSWORD}]",
            f"SCRAM-SHA-256=[name={SCRAM_USER},password={SCRAM_PASSWORD}]"]
