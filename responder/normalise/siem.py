"""SIEM detections: Microsoft Sentinel, Google SecOps (Chronicle), Datadog signals, GCP Security Command Center.

The decoders are in responder.normalise.siem_sentinel_secops (Sentinel, Google SecOps) and
responder.normalise.siem_datadog_scc (Datadog, GCP SCC), re-exported here. Importing this module registers
all four, in the order detection tries them: sentinel, google-secops, datadog, gcp-scc.
"""

from __future__ import annotations

# isort: off
from responder.normalise.siem_sentinel_secops import (  # registers sentinel, then google-secops
    SECOPS_ATTRIBUTES,
    SENTINEL_ATTRIBUTES,
    SENTINEL_TYPES,
    decode_secops,
    decode_sentinel,
)
from responder.normalise.siem_datadog_scc import (  # then datadog and gcp-scc
    DATADOG_ATTRIBUTES,
    GCP_KINDS,
    SCC_ATTRIBUTES,
    decode_datadog,
    decode_scc,
)
# isort: on

__all__ = ["DATADOG_ATTRIBUTES", "GCP_KINDS", "SCC_ATTRIBUTES", "SECOPS_ATTRIBUTES", "SENTINEL_ATTRIBUTES",
           "SENTINEL_TYPES", "decode_datadog", "decode_scc", "decode_secops", "decode_sentinel"]
