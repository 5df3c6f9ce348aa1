"""The API's rate limits: one token bucket per API key, shared by the key and its access tokens.

A key's rate is its own (`rate_limit` on the key) or its role's (`API_RATE_LIMITS`). Every answer to an
authenticated request carries the `RateLimit-Policy` and `RateLimit` headers (draft-ietf-httpapi-ratelimit-headers);
a refused one is 429 with `Retry-After`. Should the bucket table be unreachable, requests pass (and a metric says
so): the limiter protects the API, it must not be what takes it down.
"""

from __future__ import annotations

from core.models.common import Principal
from core.observability import logger, metrics
from core.store.rate_limits import Decision, RateLimiter
from functions.service.context import Services

POLICY = "per-key"
_limiter = RateLimiter()


def rate_of(svc: Services, principal: Principal) -> tuple[float, int]:
    """(requests per second, burst) for this principal's key."""
    if principal.rate_limit:
        per_second, _, burst = principal.rate_limit.partition("/")
        try:
            return float(per_second), max(1, int(burst))
        except ValueError:
            pass  # a context this process did not write: fall back to the role's rate
    return svc.settings.api_rate_by_role.get(principal.role.value, (5.0, 20))


def bucket_of(principal: Principal) -> str:
    """The key's bucket; a caller of a tenant's own identity provider has one per tenant and subject (two tenants'
    providers may issue the same subject)."""
    if principal.credential == "idp":
        return f"idp#{principal.tenant_id}#{principal.key_id}"
    return f"key#{principal.key_id}"


def take(svc: Services, principal: Principal) -> Decision | None:
    """Spend one request of the principal's key; None when the limiter could not be asked (the request passes)."""
    per_second, burst = rate_of(svc, principal)
    try:
        decision = _limiter.take(bucket_of(principal), per_second, burst)
    except Exception as exc:  # noqa: BLE001 - any store failure: fail open, visibly
        logger.warning("rate limiter unavailable; request allowed", extra={"error": type(exc).__name__})
        metrics.add_metric(name="RateLimiterUnavailable", unit="Count", value=1)
        return None
    if not decision.allowed:
        metrics.add_metric(name="RateLimited", unit="Count", value=1)
    return decision


def headers(decision: Decision) -> dict[str, str]:
    """The `RateLimit-Policy` / `RateLimit` headers of a decision (and `Retry-After` when refused)."""
    values = {"RateLimit-Policy": f'"{POLICY}";q={decision.limit};w={decision.window}',
              "RateLimit": f'"{POLICY}";r={decision.remaining};t={decision.reset}'}
    if not decision.allowed:
        values["Retry-After"] = str(decision.retry_after)
    return values
