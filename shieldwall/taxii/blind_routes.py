"""The blind-matching evaluation endpoint, beside the TAXII API and authenticated as it is.

`POST /api/blind/evaluate/?epoch=N`: the body is a batch of blinded elements (32 bytes each,
`application/octet-stream`); the answer is the evaluated elements and their DLEQ proof, as
bytes. The decision and the work are the owner's `blind.evaluate.Evaluator`, handed in by
whoever composes the node (TAXII knows nothing of blind matching): `Settings.blind_evaluate`.
A refusal is a TAXII error body with its status (403, 409, 429 with Retry-After).

`evaluate_remote` is the ally's side of the same request, over a `TaxiiClient`'s
connection and credentials.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from shieldwall.taxii.app import Caller  # app.py imports this module only when mounting
from shieldwall.taxii.errors import TaxiiError

PATH = "blind/evaluate/"
OCTETS = "application/octet-stream"
EPOCH_HEADER = "X-Shieldwall-Blind-Epoch"

# (member, tier, epoch asked for, body) -> an answer with status, body, message, headers
BlindEvaluate = Callable[[str, str, int | None, bytes], Any]


def mount_blind(app: FastAPI, api_root: str, evaluate: BlindEvaluate) -> None:
    @app.post(api_root + PATH, tags=["blind"], include_in_schema=True)
    async def blind_evaluate(request: Request, member: Caller) -> Response:
        """Evaluate blinded elements with this node's blind-matching key (allies only)."""
        raw = request.query_params.get("epoch")
        epoch = int(raw) if raw and raw.isdigit() and len(raw) < 8 else None
        body = await request.body()
        answer = await run_in_threadpool(evaluate, member.name, member.tier, epoch, body)
        if answer.status != 200:
            raise TaxiiError(answer.status, answer.message, answer.headers)
        return Response(answer.body, media_type=OCTETS, headers=answer.headers)


def evaluate_remote(client: Any, epoch: int, body: bytes) -> tuple[int, bytes, str]:
    """POST one batch to a peer's endpoint with `client` (a `TaxiiClient`): (status, body,
    the error's description or ""). Bounded by the client's limits."""
    import httpx

    url = client.api_root() + PATH
    try:
        resp = client.http.post(url, params={"epoch": str(epoch)}, content=body,
                                headers={"Content-Type": OCTETS, "Accept": OCTETS},
                                timeout=client.limits.deadline)
    except httpx.HTTPError as exc:
        return 0, b"", f"{client.base_url}: unreachable ({type(exc).__name__})"
    if len(resp.content) > client.limits.max_bytes:
        return 0, b"", f"{client.base_url}: answer too large"
    if resp.status_code != 200:
        detail = ""
        with contextlib.suppress(ValueError):
            detail = str(resp.json().get("description", ""))[:300]
        return resp.status_code, b"", detail
    return 200, resp.content, ""


class RemoteEvaluate:
    """`evaluate_remote` as a picklable callable (peer URL and credentials), so a resolver
    can hand it to worker processes; each process opens its own connection."""

    def __init__(self, url: str, credentials: Any) -> None:
        self.url = url
        self.credentials = credentials
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url, "credentials": self.credentials, "_client": None}

    def __call__(self, epoch: int, body: bytes) -> tuple[int, bytes, str]:
        if self._client is None:
            from shieldwall.taxii.client import TaxiiClient

            self._client = TaxiiClient(self.url, self.credentials)
        return evaluate_remote(self._client, epoch, body)
