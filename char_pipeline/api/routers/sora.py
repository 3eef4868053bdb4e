"""The Sora-style characters door (seed 002): characters from a video clip, @mentionable.

A router over services/characters.py; the same keys, accounts, errors and reference
processing as the v1 door. Paths live under /sora/v1, so nothing clashes with /v1.
"""

import anyio
from fastapi import APIRouter, Depends, Query

from char_pipeline.api.deps import AppState, account_state
from char_pipeline.api.openapi import errors
from char_pipeline.services.characters import Characters
from char_pipeline.services.requests import CharacterIn

router = APIRouter(prefix="/sora/v1/characters", tags=["Characters (Sora-style)"])
ACCOUNT = Depends(account_state("reference:read"))


@router.post("", summary="Create a Character from a Video Clip", responses=errors(404, 409))
async def create_character(body: CharacterIn, state: AppState = ACCOUNT) -> dict:
    # Fetching, decoding and segmenting the clip is blocking work: off the event loop.
    return await anyio.to_thread.run_sync(Characters(state).create, body)


@router.get("", summary="List Characters", responses=errors(404))
def list_characters(
    limit: int = Query(20, ge=1, le=100),
    after: str | None = Query(None, max_length=40, description="last_id of the previous page."),
    state: AppState = ACCOUNT,
) -> dict:
    return Characters(state).listing(limit, after)


@router.get("/{name}", summary="Get a Character (by id or username)", responses=errors(404))
def get_character(name: str, state: AppState = ACCOUNT) -> dict:
    characters = Characters(state)
    return characters.view(characters.get(name), detail=True)


@router.delete("/{name}", summary="Delete a Character", responses=errors(404))
def delete_character(name: str, state: AppState = ACCOUNT) -> dict:
    return Characters(state).delete(name)
