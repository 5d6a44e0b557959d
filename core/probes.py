"""``GET /livez``, ``GET /readyz`` and ``GET /metrics`` for every process that serves HTTP.

Why: Kubernetes (and any operator's monitor) needs to tell three things apart. *Live*: the
event loop answers and none of the process's supervised tasks has ended — if one has, restart
the process. *Ready*: the process is caught up — every height it follows is within
``TRACO_READY_LAG_HEIGHTS`` (default 2) of the highest sealed height it has seen, and nothing
stopped it executing — only then should it serve reads or count as available. *Metrics*: the
Prometheus text of :mod:`traco.core.metrics`.

How::

    probes = Probes(lambda: Health(seen, {"consensus": ledger.height, "doc": doc.height}), lag)
    app.include_router(probes.router())
    probes.watch(tasks)   # once the process's long-running tasks exist

Answers: 200 ``{"live": true}`` / ``{"ready": true, ...}``; 503 with ``"reasons"`` naming every
problem at once.

Caveats: a loop that is blocked does not answer at all, which is what a liveness probe's timeout
is for. A process that has not read anything yet has seen nothing ahead of itself and is
ready at once; the ``startupProbe`` of a pod, not this, covers that moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from traco.core import metrics

__all__ = ["Health", "Probes"]


@dataclass(frozen=True)
class Health:
    """What a process knows about its own progress, when asked."""

    highest_seen: int
    """The highest sealed height this process has seen (its own, or a checked block ahead)."""
    heights: Mapping[str, int]
    """The height each thing it follows has reached: ``consensus`` (its ledger), each service."""
    problems: Sequence[str] = field(default=())
    """Reasons it is not ready whatever the heights say (e.g. it stopped executing)."""


class Probes:
    def __init__(self, health: Callable[[], Health], ready_lag_heights: int = 2) -> None:
        self.health = health
        self.ready_lag_heights = ready_lag_heights
        self.tasks: list[asyncio.Task[Any]] = []

    def watch(self, tasks: Iterable[asyncio.Task[Any]]) -> None:
        """Tasks that must run as long as the process does (liveness)."""
        self.tasks += list(tasks)

    def liveness(self) -> list[str]:
        """Why the process is not live (empty if it is)."""
        reasons = []
        for task in self.tasks:
            if not task.done():
                continue
            if task.cancelled():
                reasons.append(f"task {task.get_name()} was cancelled")
            elif (exc := task.exception()) is not None:
                reasons.append(f"task {task.get_name()} failed: {exc!r}")
            else:
                reasons.append(f"task {task.get_name()} ended")
        return reasons

    def readiness(self) -> tuple[list[str], dict[str, Any]]:
        """Why the process is not ready (empty if it is), and what it knows."""
        health = self.health()
        seen = max([health.highest_seen, *health.heights.values()])
        reasons = list(health.problems)
        for name, height in health.heights.items():
            behind = seen - height
            if behind > self.ready_lag_heights:
                reasons.append(
                    f"{name} is at height {height}, {behind} behind the highest sealed height seen ({seen}); "
                    f"ready within {self.ready_lag_heights}"
                )
        return reasons, {"highest_seen": seen, "heights": dict(health.heights)}

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.get("/livez")
        async def livez() -> JSONResponse:
            """200 while the event loop answers and every supervised task runs; 503 otherwise."""
            reasons = self.liveness()
            body: dict[str, Any] = {"live": not reasons}
            if reasons:
                body["reasons"] = reasons
            return JSONResponse(body, status_code=503 if reasons else 200)

        @router.get("/readyz")
        async def readyz() -> JSONResponse:
            """200 once caught up (within the allowed lag of the highest sealed height seen); 503
            with the reasons otherwise."""
            reasons, known = self.readiness()
            body: dict[str, Any] = {"ready": not reasons, **known}
            if reasons:
                body["reasons"] = reasons
            return JSONResponse(body, status_code=503 if reasons else 200)

        @router.get("/metrics")
        async def prometheus() -> Response:
            """This process's metrics (Prometheus text format)."""
            body, content_type = metrics.render()
            return Response(body, media_type=content_type)

        return router
