"""What keeps bad requests at 4xx: a body guard (JSON media type, size limit, UTF-8) and error handlers with one
message format.

The guard is plain ASGI and checks the body as it streams in, so an oversized or chunked upload is refused
without being buffered. Raising FastAPI's HTTPException from `receive` is deliberate: FastAPI re-raises it
from its body reading, so it reaches the handlers below like any other HTTP error.
"""
from __future__ import annotations

import codecs

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class RequestGuard:
    """Refuse a POST whose Content-Type is not JSON (415: every POST route takes a JSON body), bodies over
    `max_bytes` (413) and bodies that are not UTF-8 (400), as they arrive."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if scope["method"] == "POST" and not _is_json(headers.get(b"content-type", b"")):
            return await _send_error(send, 415, "send the body as JSON, with Content-Type: application/json")
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await _send_error(send, 413, self._too_large())
        seen = 0
        decoder = codecs.getincrementaldecoder("utf-8")()

        async def guarded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.max_bytes:
                    raise HTTPException(413, self._too_large())
                try:
                    decoder.decode(chunk, final=not message.get("more_body", False))
                except UnicodeDecodeError as err:
                    raise HTTPException(400, f"request body is not valid UTF-8 (byte {seen - len(chunk) + err.start})")
            return message

        await self.app(scope, guarded_receive, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes} bytes; send fewer or shorter texts"


def _is_json(content_type: bytes) -> bool:
    """application/json or any +json type, parameters such as charset allowed."""
    media_type = content_type.split(b";")[0].strip().lower()
    return media_type == b"application/json" or (media_type.startswith(b"application/")
                                                  and media_type.endswith(b"+json"))


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = JSONResponse({"detail": detail}, status_code=status).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def install_error_handlers(app: FastAPI) -> None:
    """Validation errors become 422 {"detail": "<first problem>", "errors": [...]}; HTTP errors keep their code."""

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [_describe(error) for error in exc.errors()]
        return JSONResponse({"detail": errors[0]["message"], "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def _describe(error: dict) -> dict:
    """One readable line per problem: where (body.texts.2) and what, without echoing the offending input."""
    where = ".".join(str(part) for part in error.get("loc", ()))
    if error.get("type") == "json_invalid":
        message = f"malformed JSON at character {error['loc'][-1]}: {error.get('ctx', {}).get('error', '')}"
    elif where == "body" and error.get("type") in ("model_attributes_type", "dict_type", "missing"):
        message = 'body: expected a JSON object such as {"text": "..."}, sent as Content-Type: application/json'
    else:
        message = f"{where}: {error.get('msg', 'invalid')}".replace("Value error, ", "")
    return {"location": where, "type": error.get("type", "invalid"), "message": message}
