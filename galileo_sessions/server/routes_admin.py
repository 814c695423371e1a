"""``/_admin`` routes: let a test see and steer the server it is talking to.

Tests assert on what actually crossed the wire (``/_admin/requests``), on counts and fault
tallies (``/_admin/stats``), and change fault injection between steps of one scenario
(``PUT /_admin/faults``) without restarting anything. These routes are never faulted; they do
require credentials when the server has an API key, like every other non-public route.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from galileo_sessions.server.deps import server_state
from galileo_sessions.server.faults import FaultConfig

__all__ = ["FaultConfigBody", "router"]

router = APIRouter(prefix="/_admin")


class FaultConfigBody(BaseModel):
    """Wire form of ``FaultConfig``; fields left out take their defaults (no fault)."""

    model_config = ConfigDict(extra="forbid")

    status: Annotated[int | None, Field(ge=100, le=599)] = None
    rate: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    latency_ms: Annotated[float, Field(ge=0.0)] = 0.0
    drop_rate: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    retry_after: Annotated[float | None, Field(ge=0.0)] = None
    paths: list[str] | None = None
    count: Annotated[int | None, Field(ge=0)] = None
    seed: int | None = None

    def to_config(self) -> FaultConfig:
        return FaultConfig(**self.model_dump())


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    state = server_state(request)
    counts = await run_in_threadpool(state.store.counts)
    return {
        "store": counts,
        "requests": state.requests.counters(),
        "faults": state.faults.counters(),
        "fault_config": state.faults.config.to_dict(),
    }


@router.get("/faults")
async def get_faults(request: Request) -> dict[str, Any]:
    return server_state(request).faults.config.to_dict()


@router.put("/faults")
async def put_faults(request: Request, body: FaultConfigBody) -> dict[str, Any]:
    """Replace the fault config (the ``count`` budget and the RNG start afresh)."""
    faults = server_state(request).faults
    faults.configure(body.to_config())
    return faults.config.to_dict()


@router.get("/requests")
async def recent_requests(
    request: Request, limit: Annotated[int, Query(ge=0, le=100_000)] = 100,
) -> dict[str, Any]:
    return {"requests": server_state(request).requests.recent(limit)}


@router.post("/reset")
async def reset(request: Request) -> dict[str, Any]:
    """Clear the fault config, the counters and the request log; the store is kept."""
    state = server_state(request)
    state.faults.reset()
    state.requests.reset()
    return {"reset": True}
