"""Pointing an unmodified Cloud API client library at the local stack through its HTTP client option only."""

from __future__ import annotations

from typing import Any


def local_graph_session(api_url: str) -> Any:
    """An `httpx.Client` whose requests to graph.facebook.com go to `api_url` instead (same path and headers):
    what a bot does when it moves to wagate by changing its base URL, for libraries that fix the host."""
    import httpx

    target = httpx.URL(api_url)

    class ToWagate(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            request.headers["Host"] = target.netloc.decode()
            return super().handle_request(request)

    return httpx.Client(transport=ToWagate(), timeout=30)


def pywa_client(api_url: str, api_key: str, phone_id: str, **options: Any) -> Any:
    """A `pywa.WhatsApp` bot that sends through wagate: its token is the API key, its phone id an account id or a
    cloud account's phone_number_id."""
    from pywa import WhatsApp

    return WhatsApp(phone_id=phone_id, token=api_key, session=local_graph_session(api_url), **options)
