"""Conformance: every file of the shared corpus decodes to the expected source, type, severity and resources."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from responder.models.event import SeverityLabel
from responder.normalise import decode_doc, normalise, parse_documents
from tests.conftest import CORPUS

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"corpus folder {CORPUS} is absent")


@dataclass(frozen=True)
class Case:
    """What one corpus file must decode to: its event count, and the first event's fields."""

    path: str
    events: int
    source: str
    type: str
    score: float
    resources: list[tuple[str, str]]


CASES = [
    Case(
        "alertmanager/alertmanager_webhook_v4_firing_two_alerts.json", 2, "alertmanager",
        "High CPU Temperature", 9.5,
        [
            ("host", "andromeda"),
        ],
    ),
    Case(
        "alertmanager/alertmanager_webhook_v4_high_memory_load.json", 1, "alertmanager",
        "high_memory_load", 5.0,
        [
            ("host", "instance-with-hyphen_and_underscore"),
        ],
    ),
    Case(
        "cloudtrail/awsdocs_consolelogin_iamuser_failure.json", 1, "cloudtrail",
        "signin.amazonaws.com/ConsoleLogin", 5.0,
        [
            ("iam_user", "anaya"),
            ("ip", "192.0.2.0"),
        ],
    ),
    Case(
        "cloudtrail/awsdocs_consolelogin_root_success_no_mfa.json", 1, "cloudtrail",
        "signin.amazonaws.com/ConsoleLogin", 7.5,
        [
            ("account", "111122223333"),  # the root identity: never an iam_user (a real user may be named root)
            ("ip", "192.0.2.0"),
        ],
    ),
    Case(
        "cloudtrail/eventbridge_aws_console_sign_in_via_cloudtrail.json", 1, "cloudtrail",
        "signin.amazonaws.com/ConsoleLogin", 7.5,
        [
            ("account", "123456789012"),  # the root identity
            ("ip", "0.0.0.0"),
        ],
    ),
    Case(
        "cloudtrail/ocsf_examples_consolelogin_iamuser.json", 1, "cloudtrail",
        "signin.amazonaws.com/ConsoleLogin", 2.0,
        [
            ("iam_user", "anaya"),
            ("ip", "192.0.2.0"),
        ],
    ),
    Case(
        "cloudtrail/ocsf_examples_createuser_assumedrole.json", 1, "cloudtrail",
        "iam.amazonaws.com/CreateUser", 5.0,
        [
            ("access_key", "ASIA2W7SOKHEXAMPLE"),
            ("iam_role", "Admin"),
            ("iam_user", "test_user2"),
            ("ip", "52.95.4.21"),
        ],
    ),
    Case(
        "cloudtrail/stratus_cloudtrail_stoplogging.json", 1, "cloudtrail",
        "cloudtrail.amazonaws.com/StopLogging", 7.5,
        [
            ("access_key", "AKIAGGWFBBHBE7D3M9WI"),
            ("iam_user", "christophe"),
            ("trail", "stratus-red-team-ct-stop-trail-buykxbqejv"),  # the trail to restart
            ("ip", "86.245.153.234"),
        ],
    ),
    Case(
        "cloudtrail/stratus_console_login_without_mfa.json", 1, "cloudtrail",
        "signin.amazonaws.com/ConsoleLogin", 5.0,
        [
            ("iam_user", "stratus-red-team-nmfalu-jfzdtsvchl"),
        ],
    ),
    Case(
        "cloudtrail/stratus_ec2_steal_instance_credentials.json", 45, "cloudtrail",
        "ssm.amazonaws.com/SendCommand", 2.0,
        [
            ("access_key", "AKIAAM80VXLJF8NPK4VC"),
            ("iam_user", "christophe"),
            ("instance", "i-786a3A8B5C0d92eF4"),
            ("ip", "18.236.253.47"),
        ],
    ),
    Case(
        "cloudtrail/stratus_iam_backdoor_user_createaccesskey.json", 1, "cloudtrail",
        "iam.amazonaws.com/CreateAccessKey", 5.0,
        [
            ("access_key", "AKIA30BEZSJBVKOFKZW0"),
            ("iam_user", "christophe"),
            ("access_key", "AKIAL80DWDVKKM0UXEER"),
            ("iam_user", "stratus-red-team-backdoor-u-user"),
        ],
    ),
    Case(
        "cloudtrail/stratus_iam_create_admin_user.json", 3, "cloudtrail",
        "iam.amazonaws.com/AttachUserPolicy", 7.5,
        [
            ("access_key", "AKIAOZUDECYXYM4ONAN4"),
            ("iam_user", "christophe"),
            ("iam_user", "malicious-iam-user"),
        ],
    ),
    Case(
        "cloudtrail/stratus_organizations_leave_assumerole.json", 3, "cloudtrail",
        "sts.amazonaws.com/AssumeRole", 0.0,
        [
            ("access_key", "AKIADVISM0T50G52IF0D"),
            ("iam_user", "christophe"),
            ("access_key", "ASIA36EV31F1RB3OA8IG"),
            ("iam_role", "stratus-red-team-leave-org-role"),
            ("ip", "252.5.222.230"),
        ],
    ),
    Case(
        "cloudtrail/stratus_secretsmanager_batchgetsecretvalue.json", 5, "cloudtrail",
        "secretsmanager.amazonaws.com/BatchGetSecretValue", 5.0,
        [
            ("access_key", "AKIALK3Q0HKBKZJ2XBYP"),
            ("iam_user", "christophe"),
            ("ip", "88.223.251.255"),
        ],
    ),
    Case(
        "cloudtrail/stratus_secretsmanager_getsecretvalue_burst.json", 21, "cloudtrail",
        "secretsmanager.amazonaws.com/GetSecretValue", 2.0,
        [
            ("access_key", "AKIA1JMTHE9ZMZMWG0MG"),
            ("iam_user", "christophe"),
            ("secret", "stratus-red-team-retrieve-secret-18-4Rzn83"),
            ("ip", "253.201.144.253"),
        ],
    ),
    Case(
        "cloudtrail/stratus_sts_getfederationtoken.json", 2, "cloudtrail",
        "sts.amazonaws.com/GetFederationToken", 5.0,
        [
            ("access_key", "AKIA6V1GNZTT65XQH36M"),
            ("iam_user", "stratus-red-team-user-federation-user"),
            ("access_key", "ASIASTJKC5GCM7ZE6LUP"),
        ],
    ),
    Case(
        "falco/falco_docs_terminal_shell_in_container_critical.json", 1, "falco",
        "Terminal shell in container", 9.0,
        [
            ("container", "ee97d9c4186f"),
            ("pod", "kubecon"),
            ("host", "falco-xczjd"),
        ],
    ),
    Case(
        "falco/falcosidekick_input_falco_internal_syscall_event_drop.json", 1, "falco",
        "Falco internal: syscall event drop", 0.0,
        [
            ("host", "host"),
        ],
    ),
    Case(
        "falco/falcosidekick_output_to_alertmanager_syscall_event_drop.json", 1, "falco",
        "Falco internal: syscall event drop", 9.0,
        [
            ("host", "host"),
        ],
    ),
    Case(
        "falco/falcosidekick_readme_write_below_binary_dir.json", 1, "falco",
        "Write below binary dir", 7.5,
        [
            ("host", "localhost"),
        ],
    ),
    Case(
        "falco/falcosidekick_test_input_debug.json", 1, "falco",
        "Test rule", 0.0,
        [
            ("host", "test-host"),
        ],
    ),
    Case(
        "falco/ocsf_examples_falco_kernel_module_injection.json", 1, "falco",
        "Linux Kernel Module Injection Detected", 5.0,
        [
            ("host", "host0.local"),
        ],
    ),
    Case(
        "guardduty/eventbridge_detail_only_unauthorizedaccess_ec2_sshbruteforce.json", 1, "guardduty",
        "UnauthorizedAccess:EC2/SSHBruteForce", 2.0,
        [
            ("instance", "i-99999999"),
            ("ip", "198.51.100.0"),
        ],
    ),
    Case(
        "guardduty/getfindings_recon_iamuser_userpermissions.json", 1, "guardduty",
        "Recon:IAMUser/UserPermissions", 5.0,
        [
            ("access_key", "ASIASZ4SI7REEEXAMPLE"),
            ("iam_user", "testuser"),
            ("ip", "52.94.36.7"),
        ],
    ),
    Case(
        "guardduty/getfindings_trojan_ec2_drivebysourcetraffic_dns.json", 1, "guardduty",
        "Trojan:EC2/DriveBySourceTraffic!DNS", 8.0,
        [
            ("instance", "i-99999999"),
            ("ip", "198.51.100.0"),
            ("ip", "198.51.100.1"),
        ],
    ),
    Case(
        "guardduty/getfindings_trojan_ec2_droppoint_dns.json", 1, "guardduty",
        "Trojan:EC2/DropPoint!DNS", 8.0,
        [
            ("instance", "i-99999999"),
        ],
    ),
    Case(
        "guardduty/raw_finding_canary_ec2_instance_network_connection.json", 1, "guardduty",
        "Canary:EC2/Stateless.IntegTest", 5.0,
        [
            ("instance", "i-05746eb48123455e0"),
            ("ip", "0.0.0.0"),
        ],
    ),
    Case(
        "guardduty/raw_finding_pentest_s3_parrotlinux.json", 1, "guardduty",
        "PenTest:S3/ParrotLinux", 5.0,
        [
            ("access_key", "GeneratedFindingAccessKeyId"),
            ("iam_user", "GeneratedFindingUserName"),
            ("instance", "i-99999999"),
            ("bucket", "bucketName"),
            ("ip", "198.51.100.0"),
        ],
    ),
    Case(
        "guardduty/raw_finding_recon_iamuser_maliciousipcaller_custom.json", 1, "guardduty",
        "Recon:IAMUser/MaliciousIPCaller.Custom", 5.0,
        [
            ("access_key", "GeneratedFindingAccessKeyId"),
            ("iam_user", "GeneratedFindingUserName"),
            ("instance", "i-99999999"),
            ("ip", "198.51.100.0"),
        ],
    ),
    Case(
        "ml_monitoring/cloudwatch_alarm_state_change_lambda_target_metric_math.json", 1, "cloudwatch",
        "ALARM", 5.0,
        [
            ("other", "arn:aws:cloudwatch:eu-west-1:912397435824:alarm:test_alarm"),
        ],
    ),
    Case(
        "ml_monitoring/sagemaker_clarify_bias_drift_constraint_violations.json", 2, "sagemaker-model-monitor",
        "bias_drift_check", 5.0,
        [
        ],
    ),
    Case(
        "ml_monitoring/sagemaker_clarify_feature_attribution_drift_constraint_violations.json", 2,
        "sagemaker-model-monitor",
        "feature_attribution_drift_check", 5.0,
        [
        ],
    ),
    Case(
        "ml_monitoring/sagemaker_model_monitor_data_quality_constraint_violations.json", 7, "sagemaker-model-monitor",
        "categorical_values_check", 5.0,
        [
        ],
    ),
    Case(
        "ocsf/account_change_3001_cloudtrail_createuser.json", 1, "ocsf",
        "iam.amazonaws.com/CreateUser", 0.0,
        [
            ("access_key", "ASIA2W7SOKHEXAMPLE"),
            ("iam_role", "Admin"),
            ("iam_user", "test_user2"),
            ("ip", "52.95.4.21"),
        ],
    ),
    Case(
        "ocsf/api_activity_6003_cloudtrail_generic.json", 1, "ocsf",
        "directconnect.amazonaws.com/DescribeDirectConnectGateways", 0.0,
        [
            ("access_key", "AKIA3Z2XBVEXAMPLE"),
            ("iam_user", "Level6"),
            ("ip", "205.8.181.128"),
        ],
    ),
    Case(
        "ocsf/authentication_3002_cloudtrail_consolelogin.json", 1, "ocsf",
        "signin.amazonaws.com/ConsoleLogin", 0.0,
        [
            ("iam_user", "anaya"),
            ("ip", "192.0.2.0"),
        ],
    ),
    Case(
        "ocsf/authentication_3002_okta.json", 1, "ocsf",
        "Authentication: Logon", 0.0,
        [
            ("other", "John Doe"),  # an Okta user (type "User"), not an IAM user
            ("ip", "10.0.0.1"),
        ],
    ),
    Case(
        "ocsf/compliance_finding_2003_securityhub_pci.json", 1, "ocsf",
        "PCI.Config.1 AWS Config should be enabled", 5.0,
        [
            ("account", "111111111111"),
        ],
    ),
    Case(
        "ocsf/detection_finding_2004_okta_threat_detected.json", 1, "ocsf",
        "Login Failures", 0.0,
        [
            ("other", "/app/office365/1111111111/sso/wsfed/active"),
        ],
    ),
    Case(
        "ocsf/detection_finding_2004_prowler.json", 1, "ocsf",
        "Check if ACM Certificates are about to expire in specific days or less", 7.5,
        [
            ("other", "arn:aws:acm:eu-west-1:111122223333:certificate/e4dc1386-8b4b-402c-9fed-03269ee10006"),
        ],
    ),
    Case(
        "ocsf/detection_finding_2004_securityhub_guardduty_cloudtrail_disabled.json", 1, "ocsf",
        "AWS CloudTrail trail arn:aws:cloudtrail:us-east-2:111111111111:trail/delete-me was disabled.", 2.0,
        [
            ("access_key", "ASIATMJPC7EXAMPLE"),
            ("iam_role", "Admin"),
        ],
    ),
    Case(
        "ocsf/security_finding_2001_falco_kernel_module_injection.json", 1, "ocsf",
        "Linux Kernel Module Injection Detected", 5.0,
        [
        ],
    ),
    Case(
        "ocsf/security_finding_2001_qradar_offense.json", 1, "ocsf",
        "BLEEDING-EDGE DOS -ISC- ICMP blind TCP reset DoS guessing attempt", 0.0,
        [
        ],
    ),
    Case(
        "ocsf/security_finding_2001_securityhub_rc2.json", 1, "ocsf",
        "EC2.19 Security groups should not allow unrestricted access to ports with high risk", 0.0,
        [
            ("other", "arn:aws:ec2:us-east-1:522536594833:security-group/sg-0daf160f08dfed499"),
        ],
    ),
    Case(
        "ocsf/security_finding_2001_securityscorecard_malware_list.json", 4, "ocsf",
        "Infection found on 1.183.190.110", 0.0,
        [
            ("ip", "1.183.190.110"),
        ],
    ),
    Case(
        "securityhub/asff_afsbp_iam.3_access_key_rotation.json", 1, "securityhub",
        ("Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundati"
         "onal-Security-Best-Practices"), 5.0,  # the provider's label MEDIUM alone (Normalized 40 is top-level)
        [
            ("iam_user", "test-admin2"),
        ],
    ),
    Case(
        "securityhub/asff_guardduty_stealth_iamuser_cloudtrailloggingdisabled.json", 1, "securityhub",
        "TTPs/Defense Evasion/Stealth:IAMUser-CloudTrailLoggingDisabled", 2.0,
        [
            ("access_key", "ASIATMJPC7EXAMPLE"),
            ("iam_role", "Admin"),
        ],
    ),
    Case(
        "securityhub/asff_guardduty_unauthorizedaccess_ec2_sshbruteforce_docs.json", 1, "securityhub",
        "TTPs/Initial Access/UnauthorizedAccess:EC2-SSHBruteForce", 4.0,  # MEDIUM: GuardDuty's 2 is not, 40 is
        [
            ("instance", "i-0c10c2c7863d1a356"),
            ("ip", "18.234.130.16"),
            ("ip", "172.31.43.6"),
        ],
    ),
    Case(
        "securityhub/asff_inspector_package_vulnerability.json", 1, "securityhub",
        "Software and Configuration Checks/Vulnerabilities/CVE", 5.0,  # provider's MEDIUM: not the top-level 40
        [
            ("other", ("arn:aws:ecr:us-east-2:111111111111:repository/browserhostingstack-EXAMPLE-btb1o5"
                       "4yh1jr/sha256:e9e2afad74f4e80511a5cff33d3d989b9797a718425f27e549f5b1f862c058a8")),
        ],
    ),
    Case(
        "securityhub/asff_securityhub_pci_config.1_compliance.json", 1, "securityhub",
        "Software and Configuration Checks/Industry and Regulatory Standards/PCI-DSS", 5.0,  # provider's MEDIUM
        [
            ("account", "111111111111"),
        ],
    ),
    Case(
        "securityhub/eventbridge_custom_action_afsbp_iam.6_root_hardware_mfa.json", 2, "securityhub",
        ("Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundati"
         "onal-Security-Best-Practices"), 9.0,
        [
            ("account", "111111111111"),
        ],
    ),
    Case(
        "securityhub/eventbridge_imported_afsbp_ec2.7_ebs_default_encryption.json", 1, "securityhub",
        ("Software and Configuration Checks/Industry and Regulatory Standards/AWS-Foundati"
         "onal-Security-Best-Practices"), 0.0,
        [
            ("account", "111111111111"),
        ],
    ),
    Case(
        "securityhub/eventbridge_imported_cis_1.4_access_key_rotation.json", 1, "securityhub",
        "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark", 4.0,
        [
            ("account", "111111111111"),
        ],
    ),
    Case(
        "siem_alerts/datadog_cloud_siem_signal_eventbridge_eventbridge_rule_deleted.json", 1, "datadog",
        "AWS EventBridge rule disabled or deleted", 0.0,
        [
            ("iam_user", "andrewkrug"),
        ],
    ),
    Case(
        "siem_alerts/datadog_cspm_signal_eventbridge_s3_public_bucket.json", 1, "datadog",
        "S3 bucket is publicly accessible (via policy)", 9.5,
        [
            ("bucket", "imagemicroservice.us-west-2.671642278147"),
        ],
    ),
    Case(
        "siem_alerts/gcp_scc_finding_notification_cloudsql_exfil.json", 1, "gcp-scc",
        "Exfiltration: CloudSQL Over-Privileged Grant", 2.0,
        [
            ("other", "//cloudsql.googleapis.com/projects/my-project/instances/my-db"),
        ],
    ),
    Case(
        "siem_alerts/google_secops_chronicle_rule_detection.json", 1, "google-secops",
        "SampleRule", 4.0,
        [
            ("host", "ray-xxx-laptop"),
            ("ip", "0.0.0.0"),
            ("ip", "0.0.0.1"),
        ],
    ),
    Case(
        "siem_alerts/sentinel_incident_alerts_list_api_example.json", 1, "sentinel",
        "myAlert", 2.0,
        [
        ],
    ),
    Case(
        "siem_alerts/sentinel_incident_get_by_id_api_example.json", 1, "sentinel",
        "My incident", 7.5,
        [
        ],
    ),
    Case(
        "siem_alerts/splunk_webhook_alert_action_sudo_search.json", 1, "splunk",
        "sudo", 5.0,
        [
            ("host", "myserver"),
        ],
    ),
    Case(
        "siem_alerts/wazuh_alert_integration_test_template.json", 1, "wazuh",
        "alert description", 0.0,
        [
            ("host", "agent"),
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.path)
def test_corpus_file_decodes_as_expected(case: Case) -> None:
    """The file yields the expected number of events; the first has the expected source, type, severity, resources."""
    events = normalise((CORPUS / case.path).read_bytes())
    assert len(events) == case.events
    first = events[0]
    assert (first.source, first.type, first.severity.score) == (case.source, case.type, case.score)
    assert [(r.kind.value, r.id) for r in first.resources] == case.resources
    assert first.time.tzinfo is not None
    assert first.incident_key.split(":", 1)[0] == (first.account or "-")


def test_every_corpus_file_has_an_expectation() -> None:
    """No file in the corpus is left out of the table (a new sample needs a row)."""
    on_disk = {p.relative_to(CORPUS).as_posix() for p in CORPUS.glob("*/*.json")}
    assert on_disk == {c.path for c in CASES}


def test_all_events_of_multi_record_files_share_the_burst_key() -> None:
    """The 20 GetSecretValue calls of the Stratus burst all land in one incident (the acting key)."""
    events = normalise((CORPUS / "cloudtrail/stratus_secretsmanager_getsecretvalue_burst.json").read_bytes())
    reads = [e for e in events if e.type == "secretsmanager.amazonaws.com/GetSecretValue"]
    assert len(reads) == 20
    assert {e.incident_key for e in reads} == {"903144391865:access_key:AKIA1JMTHE9ZMZMWG0MG"}
    assert len({r.id for e in reads for r in e.resources if r.kind == "secret"}) == 20


def test_security_hub_envelope_disagreeing_with_its_finding_keys_on_the_finding() -> None:
    """The Imported EC2.7 envelope names another finding in `resources`; the event keeps the finding's own Id."""
    doc = parse_documents((CORPUS / "securityhub/eventbridge_imported_afsbp_ec2.7_ebs_default_encryption.json")
                          .read_bytes())[0]
    [event] = decode_doc(doc)
    finding = doc["detail"]["findings"][0]
    assert event.id == finding["Id"]
    assert event.attributes["envelope_mismatch"] is True
    assert event.severity.label is SeverityLabel.INFO


def test_stratus_invalid_ips_are_attributes_not_resources() -> None:
    """Anonymised addresses like 075.050.255.67 never become ip resources but stay visible as attributes."""
    events = normalise((CORPUS / "cloudtrail/stratus_iam_create_admin_user.json").read_bytes())
    assert all(r.kind != "ip" for e in events for r in e.resources)
    assert {e.attributes["source_ip"] for e in events} == {"075.050.255.67"}
