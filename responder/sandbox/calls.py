"""What the fault proxy reads from a botocore request, and the AWS-shaped errors it answers with.

`describe` names the operation of a raw HTTP request (the JSON `X-Amz-Target`, the query or EC2 `Action`, or
the S3 REST shape) as a `Call`; `error_response` writes an error in the call's own protocol so botocore parses
the code as AWS would send it, and `throttling` picks each service's real throttling error. Pure functions of
the request: `responder.sandbox.faults.FaultProxy` decides which calls get them (and re-exports these names).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    """One API call as the proxy sees it."""

    method: str
    path: str
    operation: str  # "iam:CreateUser", "s3:PutObject", "sts:GetCallerIdentity", ...
    protocol: str  # "json", "query", "ec2" or "s3"


def describe(method: str, path: str, headers: dict[str, str], body: bytes) -> Call:
    """Name the operation of a botocore request (JSON target, query Action, or the S3 REST shape)."""
    target = headers.get("x-amz-target", "")
    if target:
        return Call(method, path, target.rsplit(".", 1)[-1], "json")
    auth = headers.get("authorization", "")
    service = auth.split("Credential=", 1)[-1].split("/")[3] if "Credential=" in auth else ""
    form = urllib.parse.parse_qs(body.decode("latin-1")) if body and b"Action=" in body else {}
    if "Action" in form:
        protocol = "ec2" if service == "ec2" else "query"
        return Call(method, path, f"{service}:{form['Action'][0]}", protocol)
    url = urllib.parse.urlsplit(path)
    key = url.path.strip("/").partition("/")[2]
    query = url.query
    if method == "PUT":
        op = "PutObject" if key else "CreateBucket"
    elif method == "GET":
        op = "ListObjectsV2" if "list-type=2" in query else ("GetObject" if key else "ListObjects")
    elif method == "DELETE":
        op = "DeleteObject" if key else "DeleteBucket"
    elif method == "HEAD":
        op = "HeadObject" if key else "HeadBucket"
    else:
        op = method
    return Call(method, path, f"s3:{op}", "s3")


def error_response(call: Call, status: int, code: str, message: str) -> tuple[int, dict[str, str], bytes]:
    """An AWS-shaped error for the call's protocol, so botocore parses the code as AWS would send it."""
    if call.protocol == "json":
        body = f'{{"__type":"{code}","message":"{message}"}}'.encode()
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code}, body
    if call.protocol == "ec2":
        body = (f"<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                f"<RequestID>fault</RequestID></Response>").encode()
    elif call.protocol == "query":
        body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message>"
                f"</Error><RequestId>fault</RequestId></ErrorResponse>").encode()
    else:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault</RequestId></Error>".encode()
    return status, {"Content-Type": "text/xml"}, body


def throttling(call: Call) -> tuple[int, dict[str, str], bytes]:
    """The throttling error each service really returns."""
    if call.protocol == "s3":
        return error_response(call, 503, "SlowDown", "Please reduce your request rate.")
    if call.protocol == "ec2":
        return error_response(call, 503, "RequestLimitExceeded", "Request limit exceeded.")
    if call.protocol == "json":
        return error_response(call, 400, "ThrottlingException", "Rate exceeded")
    return error_response(call, 400, "Throttling", "Rate exceeded")
