"""`/media`: presigned uploads of media that messages then send by `id`."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from core.models.media import MEDIA_ID_PATTERN, MediaInfo, MediaUpload, MediaUploadRequest
from core.observability import logger, metrics
from functions.api.context import principal_of
from functions.api.routes.accounts import ERRORS
from functions.service import media as service
from functions.service.context import services

router = APIGatewayRouter()  # type: ignore[no-untyped-call]
MediaId = Annotated[str, Path(pattern=MEDIA_ID_PATTERN, description="The media id (`med_…`).")]


@router.post(
    "/media", summary="Upload media: get a presigned PUT URL", tags=["media"],
    responses={201: {"description": "PUT the bytes to `upload_url` with `headers`",
                     "content": {"application/json": {"model": MediaUpload}}}, **ERRORS},
)
def create_upload(body: MediaUploadRequest) -> Response[Any]:
    upload = service.create_upload(services(), principal_of(router), body)
    logger.info("media upload announced", extra={"media_id": upload.id})
    metrics.add_metric(name="MediaUploads", unit="Count", value=1)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=upload,
                    headers={"Location": f"/media/{upload.id}"})


@router.get("/media/<media_id>", summary="Media metadata (uploaded yet?)", tags=["media"], responses=ERRORS)
def get_media(media_id: MediaId) -> MediaInfo:
    return service.get_media(services(), principal_of(router), media_id)
