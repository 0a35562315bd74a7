"""Kafka client security (aiokafka only here): one builder of the keyword arguments every client gets.

`kafka_client_options(settings)` turns `settings.kafka_security` into aiokafka keyword arguments
(`security_protocol`, `ssl_context`, `sasl_*`, `sasl_oauth_token_provider`); every producer, consumer and
admin client responder creates takes them. `check_connection` connects once before the clients start so
that a wrong password or an untrusted CA is one clear `ConfigError` instead of a bootstrap retry loop.
Secrets are read here and passed on; they are never logged. The MSK IAM token is signed in the `kafka-auth` thread
pool (responder/threadpools.py), so hung AWS calls never keep the Kafka clients from re-authenticating.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog
from aiokafka.abc import AbstractTokenProvider
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from responder.errors import ConfigError
from responder.kafka_config import KafkaSecurity
from responder.settings import Settings
from responder.threadpools import KAFKA_AUTH, pool, run_in

log = structlog.get_logger(__name__)

KafkaOptions = dict[str, Any]


def _secret(name: str, value: str | None, path: Path | None) -> str | None:
    """A value given directly or read from a file (surrounding whitespace stripped)."""
    if path is None:
        return value
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"kafka_security.{name}_file={path}: {exc.strerror}") from exc


def ssl_context(sec: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context: the CA (or system CAs), an optional client certificate, the hostname check."""
    try:
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(sec.ssl_cafile) if sec.ssl_cafile
                                         else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"kafka_security.ssl_cafile={sec.ssl_cafile}: not a readable PEM CA bundle ({exc})") from exc
    ctx.check_hostname = sec.ssl_check_hostname
    ctx.verify_mode = ssl.CERT_REQUIRED  # turning the hostname check off never turns chain verification off
    if sec.ssl_certfile is not None:
        password = _secret("ssl_key_password",
                           sec.ssl_key_password.get_secret_value() if sec.ssl_key_password else None,
                           sec.ssl_key_password_file)
        try:
            ctx.load_cert_chain(str(sec.ssl_certfile), str(sec.ssl_keyfile) if sec.ssl_keyfile else None,
                                password=password)
            ctx.responder_client_cert = True  # type: ignore[attr-defined]  # read by check_connection
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"kafka_security.ssl_certfile/ssl_keyfile: cannot load the client certificate and key "
                              f"(a wrong ssl_key_password, or not PEM): {getattr(exc, 'strerror', None) or exc}"
                              ) from exc
    return ctx


class FileTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """OAUTHBEARER token read from a file at each connection (a sidecar or projected token refreshes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def token(self) -> str:
        """The file's content, stripped."""
        value = _secret("oauth_token", None, self.path)
        if not value:
            raise ConfigError(f"kafka_security.oauth_token_file={self.path} is empty")
        return value


class MskIamTokenProvider(AbstractTokenProvider):  # type: ignore[misc]  # aiokafka is untyped
    """OAUTHBEARER for AWS MSK IAM: a token from AWS's signer library, reused until a minute before expiry."""

    def __init__(self, region: str, *, profile: str | None = None, role_arn: str | None = None) -> None:
        try:
            from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        except ImportError as exc:
            raise ConfigError("kafka_security.oauth_provider=aws-msk-iam needs the signer library: "
                              "pip install 'incident-responder[msk]'") from exc
        self._signer = MSKAuthTokenProvider
        self.region = region
        self.profile = profile
        self.role_arn = role_arn
        self._token: str | None = None
        self._expires_at = 0.0

    def _generate(self) -> tuple[str, int]:
        signer = self._signer
        if self.role_arn:
            token, expiry_ms = signer.generate_auth_token_from_role_arn(self.region, self.role_arn, "responder")
        elif self.profile:
            token, expiry_ms = signer.generate_auth_token_from_profile(self.region, self.profile)
        else:
            token, expiry_ms = signer.generate_auth_token(self.region)
        return str(token), int(expiry_ms)

    async def token(self) -> str:
        """A signed token for the region; AWS credentials come from the standard chain, profile or role."""
        if self._token is None or time.time() > self._expires_at - 60:
            token, expiry_ms = await run_in(pool(KAFKA_AUTH), self._generate)  # its own threads: never behind AWS calls
            self._token, self._expires_at = token, expiry_ms / 1000
            log.info("msk_iam_token_refreshed", region=self.region, expires_in_s=int(self._expires_at - time.time()))
        return self._token


def kafka_client_options(settings: Settings) -> KafkaOptions:
    """The aiokafka keyword arguments for `settings.kafka_security`; give them to every client (not bootstrap)."""
    sec = settings.kafka_security
    options: KafkaOptions = {"security_protocol": sec.protocol}
    if sec.uses_tls:
        options["ssl_context"] = ssl_context(sec)
    if sec.sasl_mechanism is None:
        return options
    options["sasl_mechanism"] = sec.sasl_mechanism
    if sec.sasl_mechanism == "OAUTHBEARER":
        if sec.oauth_provider == "token-file":
            if sec.oauth_token_file is None:  # the settings validator already refuses this
                raise ConfigError("kafka_security.oauth_token_file: required with oauth_provider=token-file")
            options["sasl_oauth_token_provider"] = FileTokenProvider(sec.oauth_token_file)
        else:
            options["sasl_oauth_token_provider"] = MskIamTokenProvider(
                sec.msk_region or settings.aws_region, profile=sec.msk_aws_profile, role_arn=sec.msk_role_arn)
        return options
    options["sasl_plain_username"] = _secret("sasl_username", sec.sasl_username, sec.sasl_username_file)
    options["sasl_plain_password"] = _secret(
        "sasl_password", sec.sasl_password.get_secret_value() if sec.sasl_password else None, sec.sasl_password_file)
    return options


def _has_client_cert(ctx: ssl.SSLContext) -> bool:
    return bool(getattr(ctx, "responder_client_cert", False))


def _hosts(bootstrap: str) -> list[tuple[str, int]]:
    out = []
    for item in bootstrap.split(","):
        host, _, port = item.strip().rpartition(":")
        if host and port.isdigit():
            out.append((host.strip("[]"), int(port)))
    return out


async def check_connection(bootstrap: str, options: Mapping[str, Any], *, timeout: float = 15.0) -> None:
    """Connect once with `options`: TLS and SASL failures raise one clear ConfigError; an unreachable
    broker is left to the clients' own bootstrap retries. A no-op for PLAINTEXT."""
    protocol = options.get("security_protocol", "PLAINTEXT")
    if protocol == "PLAINTEXT":
        return
    from aiokafka.conn import create_conn

    keys = ("security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password",
            "sasl_oauth_token_provider")
    kwargs = {k: options[k] for k in keys if k in options}
    who = f"SASL {options.get('sasl_mechanism')} user {options.get('sasl_plain_username')!r}" \
        if options.get("sasl_plain_username") else f"SASL {options.get('sasl_mechanism')}"
    for host, port in _hosts(bootstrap):
        try:
            conn = await asyncio.wait_for(create_conn(host, port, request_timeout_ms=int(timeout * 1000), **kwargs),
                                          timeout)
        except ssl.SSLCertVerificationError as exc:
            raise ConfigError(f"Kafka TLS: the certificate of {host}:{port} is not trusted "
                              f"({exc.verify_message}); check kafka_security.ssl_cafile"
                              f"{' and ssl_check_hostname' if 'hostname' in str(exc.verify_message) else ''}"
                              ) from exc
        except ssl.SSLError as exc:
            raise ConfigError(f"Kafka TLS handshake with {host}:{port} failed ({exc.reason}); check "
                              f"kafka_security.protocol={protocol} and the ssl_* settings") from exc
        except (SaslAuthenticationFailed, IllegalSaslStateError, UnsupportedSaslMechanismError) as exc:
            raise ConfigError(f"Kafka authentication failed at {host}:{port} for {who}: {exc}; check "
                              "kafka_security.sasl_*") from exc
        except ConfigError:
            raise
        except KafkaConnectionError as exc:
            if "closed" in str(exc) and "ssl_context" in options and not _has_client_cert(options["ssl_context"]):
                raise ConfigError(f"Kafka TLS: {host}:{port} closed the connection after the handshake: it probably "
                                  "requires a client certificate (kafka_security.ssl_certfile and ssl_keyfile)"
                                  ) from exc
            log.warning("kafka_check_unreachable", host=host, port=port, error=str(exc)[:200])
            continue
        except (OSError, KafkaError, TimeoutError) as exc:
            log.warning("kafka_check_unreachable", host=host, port=port, error=str(exc)[:200])
            continue
        conn.close()
        log.info("kafka_connection_checked", host=host, port=port, protocol=protocol,
                 mechanism=options.get("sasl_mechanism"))
        return
