"""The authorization matrix: every authenticated API route, every kind of caller: the status it answers.

One source for two uses: tests/integration/test_authz_matrix.py calls every cell against the local stack, and
`python -m infra.authz_matrix` writes the table into docs/security.md (a test fails when the committed table is
stale, like docs/openapi.json). A route added to the template without a row fails the test too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "security.md"
BEGIN, END = "<!-- authz-matrix:begin (python -m infra.authz_matrix) -->", "<!-- authz-matrix:end -->"


@dataclass(frozen=True)
class Caller:
    """A column: who calls (the test builds exactly this caller)."""

    id: str
    header: str
    meaning: str


CALLERS: tuple[Caller, ...] = (
    Caller("none", "none", "no credentials"),
    Caller("malformed", "bad", "a malformed credential (`X-Api-Key: not-a-key`)"),
    Caller("revoked", "rev", "a revoked (deleted) admin key"),
    Caller("revoked_jwt", "rev JWT", "an access token of that key, issued before the key was revoked"),
    Caller("expired", "exp JWT", "an admin's access token past its `exp`"),
    Caller("viewer", "viewer", "a viewer key of the tenant"),
    Caller("operator", "op", "an operator key of the tenant"),
    Caller("admin", "admin", "an admin key of the tenant"),
    Caller("admin_jwt", "admin JWT", "an access token of that admin key"),
    Caller("idp_operator", "IdP op", "a token of the tenant's own identity provider whose role claim maps to "
           "operator (no accounts claim)"),
    Caller("scoped_own", "scoped", "an operator key limited to some accounts, on one of its accounts"),
    Caller("scoped_other", "scoped other", "the same key on another account of the tenant"),
    Caller("other_admin", "other tenant", "another tenant's admin key, on this tenant's resources"),
    Caller("other_jwt", "other JWT", "an access token of another tenant's admin, on this tenant's resources"),
)
#: Callers the authorizer (or the Cloud API routes' own check) refuses before any route runs: always 401.
REFUSED = ("none", "malformed", "revoked", "revoked_jwt", "expired")
#: Columns that follow from another one (a row need not spell them out): caller → (the caller it answers like,
#: the routes where it differs). An identity provider's operator is an operator, except that its token cannot be
#: exchanged for a wagate token.
DERIVED: dict[str, tuple[str, dict[tuple[str, str], int]]] = {
    "idp_operator": ("operator", {("POST", "/auth/token"): 403}),
}
#: The columns each row spells out, in this order.
AUTHENTICATED = tuple(c.id for c in CALLERS if c.id not in REFUSED and c.id not in DERIVED)


@dataclass(frozen=True)
class Row:
    """A route and the status each caller gets (None: not applicable, the route names no account)."""

    method: str
    path: str
    statuses: tuple[int | None, ...]
    note: str = ""

    def status(self, caller: str) -> int | None:
        if caller in REFUSED:
            return 401
        if caller in DERIVED:
            like, differs = DERIVED[caller]
            return differs.get((self.method, self.path), self.status(like))
        return self.statuses[AUTHENTICATED.index(caller)]

    @property
    def names_an_account(self) -> bool:
        return "{account_id}" in self.path or "{session_id}" in self.path or "{object_id}" in self.path


def row(method: str, path: str, cells: str, note: str = "") -> Row:
    """`cells`: the statuses of the AUTHENTICATED callers, space-separated, `-` for not applicable."""
    statuses = tuple(None if c == "-" else int(c) for c in cells.split())
    if len(statuses) != len(AUTHENTICATED):
        raise ValueError(f"{method} {path}: {len(statuses)} cells for {len(AUTHENTICATED)} callers")
    return Row(method, path, statuses, note)


#            viewer op  admin jwt scoped other | other tenant, its JWT
ROWS: tuple[Row, ...] = (
    row("POST", "/accounts", "403 201 201 201 403 - 201 201", "an account-scoped key cannot create accounts; "
        "another tenant's admin creates one in its own tenant"),
    row("GET", "/accounts", "200 200 200 200 200 - 200 200", "each caller lists only what it may see"),
    row("GET", "/accounts/{account_id}", "200 200 200 200 200 404 404 404",
        "outside the tenant or the key's scope an account does not exist"),
    row("PATCH", "/accounts/{account_id}", "403 200 200 200 200 404 404 404"),
    row("DELETE", "/accounts/{account_id}", "403 403 204 204 403 403 404 404", "admins only"),
    row("POST", "/accounts/{account_id}/start", "403 202 202 202 202 404 404 404"),
    row("POST", "/accounts/{account_id}/stop", "403 202 202 202 202 404 404 404"),
    row("POST", "/accounts/{account_id}/restart", "403 202 202 202 202 404 404 404"),
    row("POST", "/accounts/{account_id}/logout", "403 202 202 202 202 404 404 404"),
    row("GET", "/accounts/{account_id}/qr", "403 200 200 200 200 404 404 404",
        "viewers cannot link a phone: no QR (nor `account.qr` events on the WebSocket)"),
    row("POST", "/accounts/{account_id}/pairing-code", "403 202 202 202 202 404 404 404"),
    row("GET", "/accounts/{account_id}/pairing-code", "403 200 200 200 200 404 404 404",
        "viewers cannot link a phone: no pairing code"),
    row("POST", "/accounts/{account_id}/messages", "403 202 202 202 202 404 404 404"),
    row("GET", "/accounts/{account_id}/messages", "200 200 200 200 200 404 404 404"),
    row("GET", "/accounts/{account_id}/messages/{message_id}", "200 200 200 200 200 404 404 404"),
    row("PATCH", "/accounts/{account_id}/messages/{message_id}", "403 202 202 202 202 404 404 404"),
    row("DELETE", "/accounts/{account_id}/messages/{message_id}", "403 202 202 202 202 404 404 404"),
    row("GET", "/accounts/{account_id}/contacts/{phone}/exists", "200 200 200 200 200 404 404 404",
        "a cached answer; a new check asks WhatsApp (at most 10 a minute per account)"),
    row("GET", "/accounts/{account_id}/webhook-deliveries", "200 200 200 200 200 404 404 404"),
    row("POST", "/accounts/{account_id}/webhook-deliveries/{delivery_id}/redeliver",
        "403 202 202 202 202 404 404 404"),
    row("POST", "/api-keys", "403 403 201 201 403 - 201 201", "admins of the whole tenant only"),
    row("GET", "/api-keys", "403 403 200 200 403 - 200 200"),
    row("DELETE", "/api-keys/{key_id}", "403 403 204 204 403 - 404 404"),
    row("GET", "/me", "200 200 200 200 200 - 200 200"),
    row("POST", "/auth/token", "200 200 200 403 200 - 200 403",
        "a token (wagate's or an identity provider's) cannot get another one (`api_key_required`)"),
    row("PUT", "/identity-provider", "403 403 200 200 403 - 200 200",
        "the tenant's own identity provider (admins of the whole tenant); its tokens are callers like keys"),
    row("GET", "/identity-provider", "403 403 200 200 403 - 200 200"),
    row("DELETE", "/identity-provider", "403 403 204 204 403 - 204 204", "each admin removes its own tenant's"),
    row("POST", "/producers", "403 403 201 201 403 - 201 201", "admins only (and `DELETE`)"),
    row("GET", "/producers", "200 200 200 200 200 - 200 200", "every key of the tenant reads producers (never a "
        "secret)"),
    row("GET", "/producers/{producer_id}", "200 200 200 200 200 - 404 404"),
    row("DELETE", "/producers/{producer_id}", "403 403 204 204 403 - 404 404"),
    row("POST", "/media", "403 201 201 201 201 - 201 201"),
    row("GET", "/media/{media_id}", "200 200 200 200 200 - 404 404"),
    row("POST", "/webhooks", "403 201 201 201 403 - 201 201", "tenant webhooks need a key of the whole tenant"),
    row("GET", "/webhooks", "200 200 200 200 403 - 200 200"),
    row("GET", "/webhooks/{webhook_id}", "200 200 200 200 403 - 404 404"),
    row("PATCH", "/webhooks/{webhook_id}", "403 200 200 200 403 - 404 404"),
    row("DELETE", "/webhooks/{webhook_id}", "403 204 204 204 403 - 404 404"),
    row("GET", "/audit", "403 403 200 200 403 - 200 200", "admins of the whole tenant read its own audit log"),
    row("GET", "/health/details", "403 403 403 403 403 - 403 403",
        "the whole stack (every tenant's numbers, the fleet): unscoped admins of the bootstrap tenant only"),
    row("POST", "/realtime/tickets", "201 201 201 201 201 - 201 201",
        "the connection keeps the key's role and scope"),
    row("POST", "/{version}/{object_id}/messages", "403 200 200 200 200 400 400 400",
        "Cloud API routes answer in Meta's shape: 401 is code 190, 403 code 10, an unknown object 400 code 100/33"),
    row("POST", "/{version}/{object_id}/media", "403 200 200 200 200 400 400 400"),
    row("GET", "/{version}/{object_id}", "200 200 200 200 200 400 400 400"),
    row("DELETE", "/{version}/{object_id}", "403 200 200 200 200 - 400 400", "a media id"),
    row("POST", "/sessions", "403 201 201 201 403 - 201 201",
        "the legacy `/sessions` twin of `/accounts`: the same rules"),
    row("GET", "/sessions", "200 200 200 200 200 - 200 200"),
    row("GET", "/sessions/{session_id}", "200 200 200 200 200 404 404 404"),
    row("PATCH", "/sessions/{session_id}", "403 200 200 200 200 404 404 404"),
    row("DELETE", "/sessions/{session_id}", "403 403 204 204 403 403 404 404"),
    row("POST", "/sessions/{session_id}/start", "403 202 202 202 202 404 404 404"),
    row("POST", "/sessions/{session_id}/stop", "403 202 202 202 202 404 404 404"),
    row("POST", "/sessions/{session_id}/restart", "403 202 202 202 202 404 404 404"),
    row("POST", "/sessions/{session_id}/logout", "403 202 202 202 202 404 404 404"),
    row("GET", "/sessions/{session_id}/qr", "403 200 200 200 200 404 404 404"),
    row("POST", "/sessions/{session_id}/pairing-code", "403 202 202 202 202 404 404 404"),
    row("GET", "/sessions/{session_id}/pairing-code", "403 200 200 200 200 404 404 404"),
    row("POST", "/sessions/{session_id}/messages", "403 202 202 202 202 404 404 404"),
    row("GET", "/sessions/{session_id}/messages", "200 200 200 200 200 404 404 404"),
    row("GET", "/sessions/{session_id}/messages/{message_id}", "200 200 200 200 200 404 404 404"),
)


def find(method: str, path: str) -> Row | None:
    return next((r for r in ROWS if (r.method, r.path) == (method.upper(), path)), None)


def render() -> str:
    """The matrix as the markdown docs/security.md holds between its markers."""
    headers = [c.header for c in CALLERS]
    lines = [
        "| route | " + " | ".join(headers) + " |",
        "|---|" + "---:|" * len(headers),
    ]
    for r in ROWS:
        cells = ["—" if (s := r.status(c.id)) is None else str(s) for c in CALLERS]
        lines.append(f"| `{r.method} {r.path}` | " + " | ".join(cells) + " |")
    legend = ["", "Columns:", ""] + [f"- **{c.header}**: {c.meaning}" for c in CALLERS]
    notes = ["", "Notes:", ""] + [f"- `{r.method} {r.path}`: {r.note}" for r in ROWS if r.note]
    return "\n".join(lines + legend + notes)


def document(text: str) -> str:
    """`text` (docs/security.md) with the table between the markers replaced by `render()`."""
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"docs/security.md has no {BEGIN} ... {END} markers")
    return pattern.sub(lambda _: f"{BEGIN}\n{render()}\n{END}", text)


def main() -> None:
    DOC.write_text(document(DOC.read_text()))
    print(f"wrote the authorization matrix ({len(ROWS)} routes x {len(CALLERS)} callers) into {DOC}")


if __name__ == "__main__":
    main()
