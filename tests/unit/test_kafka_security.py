"""Kafka security settings: validation, the client options every client gets, and the OAUTHBEARER token providers."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from responder.errors import ConfigError
from responder.ingest.security import FileTokenProvider, MskIamTokenProvider, check_connection, kafka_client_options
from responder.service import Service
from responder.settings import Settings
from responder.settings_errors import SettingsInvalid
from tests.tlskit import make_pki


def test_env_variables_fill_the_nested_settings(monkeypatch, tmp_path):
    """RESPONDER_KAFKA_SECURITY__* variables set the nested fields; the password stays a secret in repr."""
    monkeypatch.setenv("RESPONDER_KAFKA_SECURITY__PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("RESPONDER_KAFKA_SECURITY__SASL_MECHANISM", "SCRAM-SHA-256")
    monkeypatch.setenv("RESPONDER_KAFKA_SECURITY__SASL_USERNAME", "svc")
    monkeypatch.setenv("RESPONDER_KAFKA_SECURITY__SASL_PASSWORD", "hunter2")
    settings = Settings()
    assert settings.kafka_security.sasl_mechanism == "SCRAM-SHA-256"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    options = kafka_client_options(settings)
    assert options == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                       "sasl_plain_username": "svc", "sasl_plain_password": "hunter2"}


@pytest.mark.parametrize(("fields", "names"), [
    ({"protocol": "SASL_SSL"}, "kafka_security.sasl_mechanism"),
    ({"protocol": "SSL", "sasl_mechanism": "PLAIN"}, "kafka_security.sasl_mechanism"),
    ({"protocol": "PLAINTEXT", "ssl_cafile": "ca.pem"}, "kafka_security.ssl_"),
    ({"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "u"},
     "kafka_security.sasl_password"),
    ({"protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": "p",
      "sasl_password_file": "p.txt"}, "sasl_password_file"),
    ({"protocol": "SSL", "ssl_keyfile": "k.pem"}, "ssl_certfile"),
    ({"protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER", "oauth_provider": "token-file"},
     "kafka_security.oauth_token_file"),
    ({"protocol": "TLS"}, "protocol"),
])
def test_inconsistent_settings_are_refused_naming_the_field(fields, names):
    """A combination that could only fail at connect time is a settings error (exit 3) naming the setting."""
    with pytest.raises(SettingsInvalid, match="(?i)" + names.replace(".", r"\.")):  # RESPONDER_KAFKA_SECURITY__X
        Settings(kafka_security=fields)


def test_secret_files_are_read_and_a_missing_one_names_the_setting(tmp_path):
    """Username and password can come from files (stripped); a missing file is a ConfigError naming its setting."""
    (tmp_path / "user").write_text("svc\n")
    (tmp_path / "pw").write_text("s3cret\n")
    sec = {"protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_username_file": tmp_path / "user",
           "sasl_password_file": tmp_path / "pw"}
    options = kafka_client_options(Settings(kafka_security=sec))
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("svc", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    with pytest.raises(ConfigError, match=r"kafka_security\.sasl_password_file"):
        kafka_client_options(Settings(kafka_security={**sec, "sasl_password_file": tmp_path / "gone"}))


def test_tls_context_loads_the_client_certificate_and_honours_the_hostname_switch(tmp_path):
    """The context trusts the CA, loads an encrypted client key with its password, and can skip the name check."""
    pki = make_pki(tmp_path)
    sec = {"protocol": "SSL", "ssl_cafile": pki.ca, "ssl_certfile": pki.client_cert, "ssl_keyfile": pki.client_key,
           "ssl_key_password": pki.client_key_password, "ssl_check_hostname": False}
    ctx = kafka_client_options(Settings(kafka_security=sec))["ssl_context"]
    assert ctx.check_hostname is False
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "responder-test-ca"),),)]
    with pytest.raises(ConfigError, match="ssl_key_password"):
        kafka_client_options(Settings(kafka_security={**sec, "ssl_key_password": "wrong"}))


async def test_every_service_client_gets_the_security_options(tmp_path):
    """Ingest consumer, dead-letter producer, approvals consumer, publisher (notify.kafka), mirror: all SASL_SSL."""
    pki = make_pki(tmp_path)
    settings = Settings(kafka_bootstrap="127.0.0.1:9", timeline_path=tmp_path / "t.jsonl", timeline_mirror_topic="m",
                        kafka_security={"protocol": "SASL_SSL", "ssl_cafile": pki.ca, "sasl_mechanism": "PLAIN",
                                        "sasl_username": "u", "sasl_password": "p"})
    service = Service(settings, runbooks=[])
    assert service.mirror is not None
    clients = [service.ingest.consumer, service.ingest.producer, service.approvals.consumer,
               service.publisher.producer, service.mirror.producer]
    try:
        for client in clients:
            inner = client._client if hasattr(client, "_client") else client.client  # consumer / producer
            assert inner._security_protocol == "SASL_SSL"
            assert inner._sasl_mechanism == "PLAIN"
            assert inner._ssl_context is service.kafka_options["ssl_context"]
    finally:
        await service.close_unstarted()
        service.recorder.close()


async def test_msk_iam_provider_signs_a_connect_url_with_the_standard_credentials(monkeypatch):
    """MSK IAM: AWS's signer library makes a presigned kafka-cluster:Connect URL for the region, reused until expiry."""
    pytest.importorskip("aws_msk_iam_sasl_signer")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY123456")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    options = kafka_client_options(Settings(aws_region="eu-west-1", kafka_security={
        "protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER", "msk_region": "us-west-2"}))
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, MskIamTokenProvider)
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    token = await provider.token()
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.netloc == "kafka.us-west-2.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIAEXAMPLEKEY123456/")
    assert await provider.token() == token


def test_msk_region_defaults_to_the_aws_region():
    """Without msk_region the provider signs for aws_region."""
    pytest.importorskip("aws_msk_iam_sasl_signer")
    options = kafka_client_options(Settings(aws_region="eu-west-1", kafka_security={
        "protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER"}))
    assert options["sasl_oauth_token_provider"].region == "eu-west-1"


async def test_token_file_provider_rereads_the_file(tmp_path: Path):
    """The token-file provider returns the file's current content at each call."""
    token = tmp_path / "token"
    token.write_text("one\n")
    options = kafka_client_options(Settings(kafka_security={
        "protocol": "SASL_SSL", "sasl_mechanism": "OAUTHBEARER", "oauth_provider": "token-file",
        "oauth_token_file": token}))
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, FileTokenProvider)
    assert await provider.token() == "one"
    token.write_text("two")
    assert await provider.token() == "two"


async def test_check_is_a_no_op_for_plaintext_and_quiet_when_unreachable():
    """PLAINTEXT skips the check; an unreachable TLS broker is left to the clients' retries (no ConfigError)."""
    await check_connection("127.0.0.1:1", {"security_protocol": "PLAINTEXT"})
    await check_connection("127.0.0.1:1", {"security_protocol": "SSL", "ssl_context": ssl.create_default_context()})
