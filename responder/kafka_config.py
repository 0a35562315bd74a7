"""How responder authenticates to Kafka: the `kafka_security` settings (TLS, SASL PLAIN/SCRAM, OAUTHBEARER/MSK IAM).

Environment: `RESPONDER_KAFKA_SECURITY__PROTOCOL=SASL_SSL`, `RESPONDER_KAFKA_SECURITY__SASL_MECHANISM=SCRAM-SHA-512`, …
(one `__` between `kafka_security` and the field), or a `kafka_security:` mapping in the YAML file.
The client keyword arguments are built from it by `responder.ingest.security.kafka_client_options`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


class KafkaSecurity(BaseModel):
    """Security settings applied to every Kafka client responder creates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protocol: Protocol = Field(default="PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    ssl_cafile: Path | None = Field(default=None,
                                    description="PEM CA bundle that signs the brokers; unset = system CAs")
    ssl_certfile: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    ssl_keyfile: Path | None = Field(default=None, description="PEM private key of ssl_certfile")
    ssl_key_password: SecretStr | None = Field(default=None, description="password of an encrypted ssl_keyfile")
    ssl_key_password_file: Path | None = Field(default=None, description="file holding ssl_key_password")
    ssl_check_hostname: bool = Field(default=True, description="check the broker certificate's name (the chain is "
                                                               "always verified)")
    sasl_mechanism: Mechanism | None = Field(default=None,
                                             description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER")
    sasl_username: str | None = Field(default=None, description="PLAIN/SCRAM user name")
    sasl_username_file: Path | None = Field(default=None, description="file holding sasl_username")
    sasl_password: SecretStr | None = Field(default=None, description="PLAIN/SCRAM password")
    sasl_password_file: Path | None = Field(default=None, description="file holding sasl_password (e.g. a mounted "
                                                                     "secret)")
    oauth_provider: Literal["aws-msk-iam", "token-file"] = Field(
        default="aws-msk-iam", description="OAUTHBEARER tokens: AWS MSK IAM (signer library) or a token file")
    oauth_token_file: Path | None = Field(default=None, description="token-file provider: re-read at each connection")
    msk_region: str | None = Field(default=None, description="MSK IAM: the cluster's region (default: aws_region)")
    msk_aws_profile: str | None = Field(default=None, description="MSK IAM: sign with this AWS profile")
    msk_role_arn: str | None = Field(default=None, description="MSK IAM: sign as this assumed role")

    @property
    def uses_tls(self) -> bool:
        """Whether the connection is encrypted."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether the connection authenticates with SASL."""
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSecurity:
        """Reject combinations that could only fail at connect time, naming the setting."""
        if self.uses_sasl and self.sasl_mechanism is None:
            raise ValueError(f"kafka_security.sasl_mechanism is required with protocol {self.protocol} "
                             "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)")
        if not self.uses_sasl and self.sasl_mechanism is not None:
            raise ValueError(f"kafka_security.sasl_mechanism={self.sasl_mechanism} needs protocol SASL_SSL or "
                             f"SASL_PLAINTEXT, not {self.protocol}")
        tls_files = (self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile)
        if not self.uses_tls and any(tls_files):
            raise ValueError(f"kafka_security.ssl_* files need protocol SSL or SASL_SSL, not {self.protocol}")
        if self.ssl_keyfile is not None and self.ssl_certfile is None:
            raise ValueError("kafka_security.ssl_keyfile needs ssl_certfile")
        pairs = (("ssl_key_password", self.ssl_key_password, self.ssl_key_password_file),
                 ("sasl_username", self.sasl_username, self.sasl_username_file),
                 ("sasl_password", self.sasl_password, self.sasl_password_file))
        for name, value, path in pairs:
            if value is not None and path is not None:
                raise ValueError(f"kafka_security.{name} and {name}_file are both set: keep one")
        if self.sasl_mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            if self.sasl_username is None and self.sasl_username_file is None:
                raise ValueError(f"kafka_security.sasl_username (or sasl_username_file) is required for "
                                 f"{self.sasl_mechanism}")
            if self.sasl_password is None and self.sasl_password_file is None:
                raise ValueError(f"kafka_security.sasl_password (or sasl_password_file) is required for "
                                 f"{self.sasl_mechanism}")
        if self.sasl_mechanism == "OAUTHBEARER" and self.oauth_provider == "token-file" and not self.oauth_token_file:
            raise ValueError("kafka_security.oauth_token_file is required with oauth_provider=token-file")
        return self
