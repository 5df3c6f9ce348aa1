"""Cloud API compatibility rules without AWS: versions, Meta's multipart form, domain errors in Meta's codes."""

from __future__ import annotations

import pytest

from core import errors
from functions.service.graph_compat import GraphFailure, check_version, is_graph_path, meta_error, parse_form


def test_versions_are_vnn_dot_n_and_only_graph_like_paths_are_graphs() -> None:
    check_version("v21.0")
    check_version("v3.10")
    for bad in ("v21", "v1", "v21.0.1", "V21.0", "21.0"):
        with pytest.raises(GraphFailure) as caught:
            check_version(bad)
        assert (caught.value.status, caught.value.code) == (400, 100)
    assert is_graph_path("v21.0") and is_graph_path("v1")
    assert not is_graph_path("accounts") and not is_graph_path("nothing") and not is_graph_path("video")


def test_a_multipart_form_keeps_binary_bytes_exactly() -> None:
    data = b"\x89PNG\r\n\x1a\n\r\n--not-the-boundary\r\n\x00\xff"
    body = (b'--b0undary\r\nContent-Disposition: form-data; name="messaging_product"\r\n\r\nwhatsapp\r\n'
            b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="p\xc3\xa9.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b0undary--\r\n")
    form = parse_form(body, 'multipart/form-data; boundary="b0undary"')
    assert form["messaging_product"].data == b"whatsapp"
    assert (form["file"].data, form["file"].filename, form["file"].content_type) == (data, "pé.png", "image/png")
    with pytest.raises(errors.InvalidRequest):
        parse_form(body, "application/json")


@pytest.mark.parametrize(("error", "status", "code"), [
    (errors.InvalidRequest("bad", code="template_needs_cloud_api"), 400, 131009),
    (errors.InvalidRequest("bad", code="interactive_not_supported"), 400, 131009),
    (errors.InvalidRequest("bad", code="media_type_mismatch"), 400, 100),
    (errors.NotFound("gone", code="message_not_found"), 400, 100),
    (errors.Unauthorized("who?"), 401, 190),
    (errors.Forbidden("no", code="forbidden_role"), 403, 10),
    (errors.RateLimited("slow down", retry_after=7), 429, 130429),
    (errors.Conflict("again", code="idempotency_key_reused"), 409, 100),
    (errors.DependencyFailure("later"), 503, 2),
])
def test_domain_errors_become_metas_codes_with_ours_beside(error: errors.DomainError, status: int, code: int) -> None:
    failure = meta_error(error)
    assert (failure.status, failure.code, failure.wagate_code, failure.details) == (status, code, error.code,
                                                                                     error.message)
    assert failure.retry_after == (7 if status == 429 else 5 if status == 503 else None)
