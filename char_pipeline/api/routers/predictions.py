"""The InstantCharacter-style door (seeds 003/004): WaveSpeed's predictions API.

A router over services/predictions.py. Answers use WaveSpeed's envelope ``{code, message,
data}``, errors too (``code`` is the HTTP status, ``message`` names the field, ``data`` is
null); the key, its account and its rate limits are the v1 door's.
"""

import json

import anyio
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from char_pipeline.api.deps import AppState, account_state, require_scope
from char_pipeline.api.openapi import errors
from char_pipeline.engine.errors import CharPipelineError
from char_pipeline.jobstore import ApiKey
from char_pipeline.services.predictions import Predictions

router = APIRouter(prefix="/api/v3", tags=["Predictions (InstantCharacter-style)"])
WRITER = require_scope("generate:write")
ACCOUNT = Depends(account_state("generate:write"))
WAVESPEED_ERRORS = {"x-error-schema": "WaveSpeedError"}  # api/openapi.py documents it


def _answer(state: AppState, envelope: dict) -> JSONResponse:
    """The envelope as the seed shapes it; the seed used (random for −1) rides in X-Seed, as
    the envelope has no field for it."""
    prediction = state.jobs.get_prediction(envelope["data"]["id"])
    seed = prediction.request.get("seed") if prediction else None
    return JSONResponse(envelope, headers={"X-Seed": str(seed)} if seed is not None else None)


def _error(exc: CharPipelineError) -> JSONResponse:
    status = 400 if exc.http_status == 422 else exc.http_status
    return JSONResponse({"code": status, "message": exc.message, "data": None}, status_code=status)


@router.post(
    "/wavespeed-ai/instant-character",
    summary="Submit an InstantCharacter Task",
    responses=errors(400, 404),
    openapi_extra=WAVESPEED_ERRORS,
)
async def submit(
    request: Request,
    webhook: str | None = Query(None, max_length=2000, description="POSTed the result when done."),
    key: ApiKey = Depends(WRITER),
    state: AppState = ACCOUNT,
) -> JSONResponse:
    try:
        body = json.loads(await request.body() or b"null")
    except json.JSONDecodeError as exc:
        return JSONResponse(
            {"code": 400, "message": f"The body is not valid JSON: {exc.msg}.", "data": None},
            status_code=400,
        )
    predictions = Predictions(state)
    try:
        answer = await anyio.to_thread.run_sync(
            lambda: predictions.submit(body, api_key_id=key.id, webhook=webhook)
        )
    except CharPipelineError as exc:
        return _error(exc)
    return _answer(state, answer)


@router.get(
    "/predictions/{prediction_id}/result",
    summary="Get a Prediction's Result",
    responses=errors(400, 404),
    openapi_extra=WAVESPEED_ERRORS,
)
def result(prediction_id: str, state: AppState = ACCOUNT) -> JSONResponse:
    predictions = Predictions(state)
    try:
        return _answer(state, predictions.envelope(predictions.get(prediction_id)))
    except CharPipelineError as exc:
        return _error(exc)


@router.get(
    "/predictions/{prediction_id}",
    summary="Get a Prediction",
    responses=errors(400, 404),
    openapi_extra=WAVESPEED_ERRORS,
)
def prediction(prediction_id: str, state: AppState = ACCOUNT) -> JSONResponse:
    return result(prediction_id, state)
