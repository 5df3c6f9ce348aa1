"""Lambda REQUEST authorizer: resolves an API key or an access token (JWT) to a tenant-scoped principal."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core.errors import Unauthorized
from core.observability import logger, metrics
from functions.api import audit
from functions.service.api_keys import authenticate, presented_key
from functions.service.context import services

__all__ = ["lambda_handler", "presented_key"]


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Allow this one call with the principal in the context, or raise `Unauthorized` (API Gateway answers 401).

    The key (or the token's key) is looked up on every call and results are not cached (`ReauthorizeEvery: 0`),
    so a revoked key and its tokens stop at once. The policy allows only the method and path asked for: were
    caching ever turned on, one allowed call would not open every other route for the cache's life.
    """
    try:
        principal = authenticate(services(), presented_key(event.get("headers")))
    except Unauthorized:
        metrics.add_metric(name="AuthRejected", unit="Count", value=1)
        audit.refused(event)  # a security event: who (key prefix or anonymous), from where, which route, why
        logger.info("request rejected: missing or invalid API key or access token")
        raise Exception("Unauthorized") from None
    logger.append_keys(tenant_id=principal.tenant_id, key_id=principal.key_id)
    return {
        "principalId": principal.key_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow",
                           "Resource": str(event.get("methodArn", ""))}],
        },
        "context": {
            "tenant_id": principal.tenant_id,
            "role": principal.role.value,
            "key_id": principal.key_id,
            "account_ids": ",".join(principal.account_ids),
            "credential": principal.credential,
            "rate_limit": principal.rate_limit,
        },
    }
