"""The one place where botocore's exceptions become qctl errors.

Every call into botocore runs inside :func:`translated` (or through
:func:`translate` for errors collected from worker threads), so no botocore
exception escapes the adapter.  Service errors are told apart by their code,
in both spellings SQS uses: the JSON protocol's (``QueueDoesNotExist``) and the
query-compatible one AWS sends in ``x-amzn-query-error``
(``AWS.SimpleQueueService.NonExistentQueue``).  Messages go through
:func:`qctl.urls.redact`.

Exit codes: a missing queue is 4; credentials that are missing, refused or
expired, an endpoint that cannot be reached or answers too slowly, throttling
and server errors are 3 (worth retrying later, or after fixing access); what
SQS refuses about the request itself is 2.  ``PurgeQueueInProgress`` (AWS
takes one purge per queue every 60 seconds) is 3 as well: it is a transient
refusal that the same command, run a minute later, gets past -- a cron job
that retries on 3 does the right thing, while 2 says "this command can never
work".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore import exceptions as bex  # type: ignore[import-untyped]

from qctl.errors import BrokerUnavailable, QctlError, QueueNotFound, Unsupported, UsageError
from qctl.urls import redact

NOT_FOUND = frozenset({"NonExistentQueue", "QueueDoesNotExist"})
CREDENTIALS = frozenset({
    "AccessDenied", "AccessDeniedException", "InvalidClientTokenId", "SignatureDoesNotMatch",
    "UnrecognizedClientException", "InvalidSecurity", "MissingAuthenticationToken", "IncompleteSignature",
    "ExpiredToken", "ExpiredTokenException", "RequestExpired", "AuthFailure", "InvalidAccessKeyId",
    "OptInRequired", "NotAuthorized", "KmsAccessDenied",
})
BUSY = frozenset({
    "PurgeQueueInProgress", "RequestThrottled", "ThrottlingException", "Throttling", "OverLimit",
    "ServiceUnavailable", "InternalError", "InternalFailure", "KmsThrottled",
})
KMS = frozenset({"KmsDisabled", "KmsInvalidState", "KmsNotFound", "KmsOptInRequired", "KmsInvalidKeyUsage"})
_PREFIXES = ("AWS.SimpleQueueService.", "com.amazonaws.sqs#")
CREDENTIAL_HINT = ("set AWS_PROFILE or aws_profile in the profile's [profiles.NAME.sqs] table, AWS_ACCESS_KEY_ID and "
                   "AWS_SECRET_ACCESS_KEY, or run 'aws sso login'")


def code_of(exc: Any) -> str:
    """The error code of a botocore ClientError, without the query protocol's prefixes."""
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code") or "")
    code = code.split(";", 1)[0]
    for prefix in _PREFIXES:
        code = code.removeprefix(prefix)
    return code


def message_of(exc: Any) -> str:
    error = getattr(exc, "response", {}).get("Error", {})
    return redact(" ".join(str(error.get("Message") or "").split()))


def status_of(exc: Any) -> int:
    return int(getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _classes(*names: str) -> tuple[type[BaseException], ...]:
    """The botocore exception classes of these names that this botocore has (some are recent)."""
    return tuple(getattr(bex, name) for name in names if isinstance(getattr(bex, name, None), type))


_SSO = _classes("SSOError", "TokenRetrievalError", "LoginError")


def translate(exc: BaseException, where: str, what: str, timeout: float | None = None) -> QctlError | None:
    """The qctl error for a botocore (or socket) error, None for anything else."""
    if isinstance(exc, QctlError):
        return exc
    if isinstance(exc, bex.ClientError):
        return _client_error(exc, where, what)
    if isinstance(exc, (bex.ConnectTimeoutError, bex.ReadTimeoutError, TimeoutError)):
        limit = f" after {timeout:g}s" if timeout else ""
        return BrokerUnavailable(f"{what}: SQS at {where} did not answer{limit}", hint="raise --timeout, or check "
                                 "that the endpoint is an SQS service")
    if isinstance(exc, bex.SSLError):
        return BrokerUnavailable(f"{what}: TLS with {where} failed: {_text(exc)}",
                                 hint="check ca_file and verify in the profile")
    if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectionClosedError, bex.ProxyConnectionError,
                        bex.HTTPClientError, bex.ConnectionError)):
        return BrokerUnavailable(f"{what}: cannot reach SQS at {where}: {_text(exc)}",
                                 hint="is the endpoint right and the server running? (sqs://REGION for AWS, "
                                      "sqs+http://HOST:PORT for a compatible server)")
    if isinstance(exc, bex.NoCredentialsError):
        return BrokerUnavailable(f"{what}: no AWS credentials found for {where}", hint=CREDENTIAL_HINT)
    if isinstance(exc, bex.PartialCredentialsError):
        return BrokerUnavailable(f"{what}: incomplete AWS credentials: {_text(exc)}", hint=CREDENTIAL_HINT)
    if isinstance(exc, _SSO):
        return BrokerUnavailable(f"{what}: the AWS SSO session cannot be used: {_text(exc)}",
                                 hint="run 'aws sso login' for that profile")
    if isinstance(exc, (bex.CredentialRetrievalError, bex.MetadataRetrievalError, bex.RefreshWithMFAUnsupportedError)):
        return BrokerUnavailable(f"{what}: AWS credentials could not be obtained: {_text(exc)}",
                                 hint=CREDENTIAL_HINT)
    if isinstance(exc, bex.ProfileNotFound):
        return UsageError(f"{_text(exc)}", hint="check aws_profile in the profile's [profiles.NAME.sqs] table, or "
                                                "AWS_PROFILE; profiles live in ~/.aws/config")
    if isinstance(exc, bex.NoRegionError):
        return UsageError("no AWS region: give sqs://REGION, region in the profile's [profiles.NAME.sqs] table, "
                          "or AWS_DEFAULT_REGION")
    if isinstance(exc, (bex.ParamValidationError, bex.ValidationError, bex.InvalidRegionError,
                        bex.InvalidEndpointConfigurationError, bex.InvalidHostLabelError, bex.InvalidConfigError,
                        bex.UnknownEndpointError, bex.ConfigParseError)):
        return UsageError(f"{what}: {_text(exc)}")
    if isinstance(exc, bex.BotoCoreError):
        return BrokerUnavailable(f"{what}: {where}: {_text(exc)}")
    if isinstance(exc, OSError):
        return BrokerUnavailable(f"{what}: cannot reach SQS at {where}: {_text(exc)}")
    return None


def _client_error(exc: Any, where: str, what: str) -> QctlError:
    code, text, status = code_of(exc), message_of(exc), status_of(exc)
    if not code or code.isdigit():  # botocore found no SQS error in the answer: some other HTTP server
        return BrokerUnavailable(f"{what}: {where} answered HTTP {status or code or '?'}, but not as SQS does",
                                 hint="is that an SQS endpoint? (sqs://REGION for AWS, sqs+http://HOST:PORT for a "
                                      "compatible server)")
    said = f"{code}: {text}" if text and text != code else code
    if code in NOT_FOUND:
        return QueueNotFound(f"{what}: queue not found ({said})", hint="list queues with 'qctl stats'")
    if code in CREDENTIALS or status == 403:
        return BrokerUnavailable(f"{what}: {where} refused the request: {said}",
                                 hint="check the credentials, the region and the IAM permissions")
    if code == "PurgeQueueInProgress":
        return BrokerUnavailable(f"{what}: SQS refused: {said}",
                                 hint="AWS takes one PurgeQueue per queue every 60 seconds; run it again in a minute")
    if code in BUSY or code in KMS or status >= 500:
        return BrokerUnavailable(f"{what}: SQS at {where} could not serve the request: {said}",
                                 hint="try again later" if code not in KMS else "check the queue's KMS key")
    if code == "UnsupportedOperation":
        return Unsupported(f"{what}: SQS refused: {said}")
    return UsageError(f"{what}: SQS refused: {said}")


def _text(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split())) or type(exc).__name__


@contextmanager
def translated(where: str, what: str, timeout: float | None = None) -> Iterator[None]:
    """Turn any botocore error raised inside the block into a qctl error."""
    try:
        yield
    except QctlError:
        raise
    except Exception as exc:
        error = translate(exc, where, what, timeout)
        if error is None:
            raise
        raise error from None
