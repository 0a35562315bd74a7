"""Threat classification: declarative tables from each format's native type/rule/technique to a Threat.

A table maps a native key (GuardDuty finding type, CloudTrail `eventSource/eventName`, Falco rule,
Datadog rule name…) to a Threat, exactly or by literal prefix (`Policy:S3/Bucket*`); a row may name a
qualifier for the few calls that are threats only in context. The tables are listed per event source in
`TABLES`, which `responder coverage` reads (docs/threats.md). The table machinery (`ThreatTable`, `Entry`,
the row maker `t`, `QUALIFIERS`) is in responder.normalise.threat_table (re-exported here).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from responder.models.threat import Threat, ThreatCategory, is_technique
from responder.normalise.threat_table import _MEMO_KEY, _MEMO_SIZE, QUALIFIERS, Entry, Qualifier, ThreatTable, t

__all__ = ["CLOUDTRAIL", "CLOUDWATCH", "DATADOG", "DRIFT", "FALCO", "GUARDDUTY", "OCSF_TYPES", "QUALIFIERS",
           "SAGEMAKER", "SECURITYHUB", "SENTINEL", "SPLUNK", "TABLES", "TECHNIQUES", "_MEMO_KEY", "_MEMO_SIZE", "C",
           "Entry", "Qualifier", "ThreatTable", "asff_threat", "aws_product", "declared", "first", "from_techniques",
           "guardduty_type", "t"]

C = ThreatCategory


# ---- GuardDuty finding types (also reached from ASFF / OCSF `Types`, rewritten back) ------------------
GUARDDUTY = ThreatTable({
    "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration*": t(C.CREDENTIAL_EXFILTRATION, "T1552.005",
                                                                    "T1078.004"),
    "UnauthorizedAccess:IAMUser/*": t(C.CREDENTIAL_COMPROMISE, "T1078.004"),
    # GuardDuty's ML anomaly findings (…/AnomalousBehavior, the only types of these families): a verdict that the
    # calls are unusual, not that the key is someone else's or that logging was stopped; paged, never contained
    # (anomalous-credential-use), whichever tactic the model names
    "CredentialAccess:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1078.004"),
    "InitialAccess:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1078.004"),
    "DefenseEvasion:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1562.008"),
    "Persistence:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1098.001"),
    "PrivilegeEscalation:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1098.003"),
    "Discovery:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1087.004"),
    "Exfiltration:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1537"),
    "Impact:IAMUser/*": t(C.ANOMALOUS_CREDENTIAL_USE, "T1485"),
    "Stealth:IAMUser/CloudTrailLoggingDisabled": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
    "Recon:IAMUser/*": t(C.DISCOVERY, "T1087.004"),
    "Policy:S3/Bucket*": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "Stealth:S3/ServerAccessLoggingDisabled": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
    "Impact:S3/AnomalousBehavior.Write": t(C.UNAUTHORIZED_DATA_WRITE, "T1565.001", "AML.T0020"),
    "CryptoCurrency:*": t(C.CRYPTOMINING, "T1496"),
    "Impact:EC2/BitcoinDomainRequest*": t(C.CRYPTOMINING, "T1496"),
    "Backdoor:EC2/*": t(C.HOST_COMPROMISE, "T1071"),
    "Trojan:EC2/*": t(C.HOST_COMPROMISE, "T1071"),
    "UnauthorizedAccess:EC2/*": t(C.HOST_COMPROMISE, "T1110"),
    "Execution:Runtime/*": t(C.HOST_COMPROMISE, "T1059"),
    "CryptoCurrency:Runtime/*": t(C.CRYPTOMINING, "T1496"),
})

# ---- CloudTrail `eventSource/eventName` -------------------------------------------------------------------
_BEDROCK_ABUSE = ("T1496.004", "AML.T0034")
CLOUDTRAIL = ThreatTable({
    "cloudtrail.amazonaws.com/StopLogging": t(C.DEFENSE_EVASION_LOGGING, "T1562.008", when=["succeeded"]),
    "cloudtrail.amazonaws.com/DeleteTrail": t(C.DEFENSE_EVASION_LOGGING, "T1562.008", when=["succeeded"]),
    # selectors that log no write management call blind the trail (a stop, contained); a narrowed selector or a
    # changed trail (its bucket, its regions) leaves writes logged: a notice
    "cloudtrail.amazonaws.com/PutEventSelectors": (
        t(C.DEFENSE_EVASION_LOGGING, "T1562.008", when=["succeeded", "writes_unlogged"]),
        t(C.AUDIT_LOGGING_CHANGED, "T1562.008", when=["succeeded"])),
    "cloudtrail.amazonaws.com/UpdateTrail": t(C.AUDIT_LOGGING_CHANGED, "T1562.008", when=["succeeded"]),
    "guardduty.amazonaws.com/DeleteDetector": t(C.DEFENSE_EVASION_LOGGING, "T1562.001", when=["succeeded"]),
    "iam.amazonaws.com/CreateAccessKey": t(C.BACKDOOR_CREDENTIAL, "T1098.001", when=["succeeded", "other_user"]),
    "iam.amazonaws.com/CreateLoginProfile": t(C.BACKDOOR_CREDENTIAL, "T1098.001",
                                              when=["succeeded", "other_user"]),
    "bedrock.amazonaws.com/PutUseCaseForModelAccess": t(C.LLMJACKING, *_BEDROCK_ABUSE, when=["user_key"]),
    "bedrock.amazonaws.com/CreateFoundationModelAgreement": t(C.LLMJACKING, *_BEDROCK_ABUSE, when=["user_key"]),
    "bedrock.amazonaws.com/PutFoundationModelEntitlement": t(C.LLMJACKING, *_BEDROCK_ABUSE, when=["user_key"]),
    "bedrock.amazonaws.com/InvokeModel*": t(C.LLMJACKING, *_BEDROCK_ABUSE, when=["user_key"]),
    "bedrock.amazonaws.com/Converse*": t(C.LLMJACKING, *_BEDROCK_ABUSE, when=["user_key"]),
    "secretsmanager.amazonaws.com/BatchGetSecretValue": t(C.SECRET_ACCESS, "T1555.006", when=["succeeded"]),
    # S3 data events: every successful object write is a candidate; which bucket is training data and which
    # writers are allowed is the runbook's to say (unauthorized-training-data-write)
    "s3.amazonaws.com/PutObject": t(C.UNAUTHORIZED_DATA_WRITE, "T1565.001", "AML.T0020", when=["succeeded"]),
    "s3.amazonaws.com/CopyObject": t(C.UNAUTHORIZED_DATA_WRITE, "T1565.001", "AML.T0020", when=["succeeded"]),
    "s3.amazonaws.com/CompleteMultipartUpload": t(C.UNAUTHORIZED_DATA_WRITE, "T1565.001", "AML.T0020",
                                                  when=["succeeded"]),
})

# ---- Falco rules (techniques also come from the rule's `T…` tags) ------------------------------------------
FALCO = ThreatTable({
    "Terminal shell in container": t(C.CONTAINER_SHELL, "T1059.004", "T1609"),
    "Detect crypto miners using the Stratum protocol": t(C.CRYPTOMINING, "T1496"),
    "Detect outbound connections to common miner pool ports": t(C.CRYPTOMINING, "T1496"),
    "Write below binary dir": t(C.CONTAINER_DRIFT, "T1543"),
    "Drop and execute new binary in container": t(C.CONTAINER_DRIFT, "T1059"),
    "Linux Kernel Module Injection Detected": t(C.CONTAINER_DRIFT, "T1547.006"),
})

# ---- SageMaker Model Monitor / Clarify `constraint_check_type`, responder drift `type` -------------------
SAGEMAKER = ThreatTable({key: t(C.MODEL_DRIFT) for key in (
    "baseline_drift_check", "bias_drift_check", "feature_attribution_drift_check", "data_type_check",
    "completeness_check", "categorical_values_check", "missing_column_check", "extra_column_check")})
DRIFT = ThreatTable({"model.drift": t(C.MODEL_DRIFT)})

# ---- CloudWatch alarm names (the naming convention of the shipped model runbooks) ------------------------
CLOUDWATCH = ThreatTable({
    "model-integrity-*": t(C.MODEL_TAMPERING, "AML.T0018"),
    "model-extraction-*": t(C.MODEL_EXTRACTION, "AML.T0024.002"),
    "model-drift-*": t(C.MODEL_DRIFT),
})

# ---- Security Hub controls (ASFF `Compliance.SecurityControlId`, OCSF `compliance.control`) -------------------
SECURITYHUB = ThreatTable({
    "S3.2": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "S3.3": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "S3.8": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "S3.19": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "CloudTrail.1": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
})

# ---- SIEM rule / search / alert names (site conventions; techniques from the source win when mapped) ------
DATADOG = ThreatTable({
    "S3 bucket is publicly accessible*": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "S3 bucket contents are publicly accessible*": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    # watches StopLogging, DeleteTrail and UpdateTrail, and the signal does not say which: two of three are a stop
    "AWS CloudTrail configuration modified": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
    "AWS IAM access key created for another user*": t(C.BACKDOOR_CREDENTIAL, "T1098.001"),
    "AWS Bedrock*": t(C.LLMJACKING, *_BEDROCK_ABUSE),
})
SPLUNK = ThreatTable({
    "AWS Exposed Access Key*": t(C.CREDENTIAL_COMPROMISE, "T1552.001", "T1078.004"),
    "AWS Leaked Access Key*": t(C.CREDENTIAL_COMPROMISE, "T1552.001", "T1078.004"),
    "AWS Stop CloudTrail Logging*": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
    "AWS Bedrock*": t(C.LLMJACKING, *_BEDROCK_ABUSE),
})
SENTINEL = ThreatTable({
    "AWS access key exposed*": t(C.CREDENTIAL_COMPROMISE, "T1552.001", "T1078.004"),
    "AWS leaked access key*": t(C.CREDENTIAL_COMPROMISE, "T1552.001", "T1078.004"),
    "AWS CloudTrail logging disabled*": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
})
OCSF_TYPES = ThreatTable({
    "Model Tampering": t(C.MODEL_TAMPERING, "AML.T0018"),
    "Unsigned Model": t(C.UNSIGNED_MODEL, "AML.T0010.003"),
    "Model Extraction": t(C.MODEL_EXTRACTION, "AML.T0024.002"),
})

# ---- technique ids reported natively (OCSF attacks[], Datadog technique: tags, SCC mitreAttack, Falco tags)
TECHNIQUES = ThreatTable({
    "T1562.008": t(C.DEFENSE_EVASION_LOGGING, "T1562.008"),
    "T1098.001": t(C.BACKDOOR_CREDENTIAL, "T1098.001"),
    "T1552.005": t(C.CREDENTIAL_EXFILTRATION, "T1552.005"),
    "T1552.001": t(C.CREDENTIAL_COMPROMISE, "T1552.001"),
    "T1078.004": t(C.CREDENTIAL_COMPROMISE, "T1078.004"),
    "T1530": t(C.PUBLIC_DATA_EXPOSURE, "T1530"),
    "T1496.004": t(C.LLMJACKING, "T1496.004"),
    "T1496": t(C.CRYPTOMINING, "T1496"),
    "T1609": t(C.CONTAINER_SHELL, "T1609"),
    "T1565.001": t(C.UNAUTHORIZED_DATA_WRITE, "T1565.001"),
    "AML.T0018*": t(C.MODEL_TAMPERING, "AML.T0018"),
    "AML.T0010*": t(C.UNSIGNED_MODEL, "AML.T0010"),
    "AML.T0024*": t(C.MODEL_EXTRACTION, "AML.T0024"),
    "AML.T0034": t(C.LLMJACKING, "AML.T0034"),
})

# event source → the tables its decoder consults (what `responder coverage` can promise per column)
TABLES: dict[str, tuple[ThreatTable, ...]] = {
    "guardduty": (GUARDDUTY,),
    "securityhub": (GUARDDUTY, SECURITYHUB),
    "ocsf": (TECHNIQUES, GUARDDUTY, SECURITYHUB, OCSF_TYPES),
    "cloudtrail": (CLOUDTRAIL,),
    "falco": (FALCO, TECHNIQUES),
    "sagemaker-model-monitor": (SAGEMAKER,),
    "responder.drift": (DRIFT,),
    "cloudwatch": (CLOUDWATCH,),
    "datadog": (TECHNIQUES, DATADOG),
    "splunk": (TECHNIQUES, SPLUNK),
    "sentinel": (TECHNIQUES, SENTINEL),
    "gcp-scc": (TECHNIQUES,),
}


def declared() -> dict[str, set[ThreatCategory]]:
    """Source → every category its tables can produce."""
    return {source: set().union(*(table.categories() for table in tables)) for source, tables in TABLES.items()}


def guardduty_type(asff_type: Any) -> str | None:
    """`TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled` → `Stealth:IAMUser/CloudTrailLoggingDisabled`.

    ASFF (and OCSF mapped from it) rewrites the `/` after a GuardDuty resource type as `-`; GuardDuty's own form
    (Security Hub's OCSF findings, `Findings Imported V2`, write it so) is returned as is; anything else is None.
    """
    if not isinstance(asff_type, str):
        return None
    if ":" in asff_type.partition("/")[0]:  # `<purpose>:<resource>/<family>`: GuardDuty's own form
        return asff_type
    classifier = asff_type.rpartition("/")[2]
    purpose, colon, rest = classifier.partition(":")
    if not colon:
        return None
    resource, dash, family = rest.partition("-")
    return f"{purpose}:{resource}/{family}" if dash else None


def from_techniques(ids: Iterable[Any]) -> Threat | None:
    """The threat of the first mapped technique id, carrying every valid id the source gave."""
    valid = tuple(x for x in ids if isinstance(x, str) and is_technique(x))
    for tid in valid:
        found = TECHNIQUES.lookup(tid)
        if found is not None:
            return found.with_techniques(valid)
    return None


def first(*candidates: Threat | None) -> Threat | None:
    """The first classification that is not None."""
    return next((c for c in candidates if c is not None), None)


def aws_product(arn: Any, product: str) -> bool:
    """Whether `arn` is Security Hub's ARN for AWS's own `product`, in any partition and region:
    `arn:aws:securityhub:us-east-1::product/aws/guardduty` (ASFF `ProductArn`; Security Hub's OCSF findings say
    `productv2`). AWS's (and partners') product ARNs name no account; a custom integration's does
    (`…:123456789012:product/123456789012/default`), and Security Hub lets an importer write only its own, so a
    finding imported by anyone allowed `securityhub:BatchImportFindings` cannot claim AWS's."""
    return type(arn) is str and arn.startswith("arn:") and ":securityhub:" in arn and arn.endswith(
        (f"::product/aws/{product}", f"::productv2/aws/{product}"))


def asff_threat(types: Iterable[Any]) -> Threat | None:
    """The threat of the first ASFF type (or GuardDuty type, `guardduty_type`) that is a mapped GuardDuty finding
    type."""
    for value in types:
        found = GUARDDUTY.lookup(guardduty_type(value))
        if found is not None:
            return found
    return None
