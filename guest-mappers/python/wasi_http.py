"""One blocking HTTP request over ``wasi:http/outgoing-handler``, for the policy's power API.

The broker lets it through only to the hosts listed in the operator's ``mapper.allowed_hosts``.
"""

import re

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler, streams
from wit_world.imports import wasi_http_types as http

from example_mapper.power import HttpError, HttpResponse

#: The largest response body read, in bytes; the power API answers a few bytes of JSON.
MAX_BODY_BYTES = 64 * 1024

_URL = re.compile(r"(https?)://([^/]+)(/.*)?")


def http_request(method: str, url: str) -> HttpResponse:
    """Sends ``method url`` (``GET`` or ``POST``) with an empty body and waits for the whole
    response.

    Raises:
        HttpError: on a transport failure, with the WIT ``error-code`` for the log.
    """
    parts = _URL.fullmatch(url)
    if parts is None:
        raise HttpError(f"not an http(s) URL: {url}")
    scheme, authority, path = parts.group(1), parts.group(2), parts.group(3) or "/"
    headers = (
        http.Fields.from_list([("content-length", b"0")]) if method == "POST" else http.Fields()
    )
    request = http.OutgoingRequest(headers)
    request.set_method(http.Method_Post() if method == "POST" else http.Method_Get())
    request.set_scheme(http.Scheme_Https() if scheme == "https" else http.Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(path)
    body = request.body()
    try:
        future = outgoing_handler.handle(request, None)
    except Err as error:
        raise HttpError(_describe(error.value)) from None
    http.OutgoingBody.finish(body, None)

    with future:
        with future.subscribe() as pollable:
            pollable.block()
        outcome = future.get()
    if not isinstance(outcome, Ok) or not isinstance(outcome.value, Ok):
        detail = _describe(outcome.value.value) if isinstance(outcome, Ok) else "no response"
        raise HttpError(detail)
    with outcome.value.value as response:
        status = response.status()
        incoming = response.consume()
        data = _read_all(incoming.stream())
        http.IncomingBody.finish(incoming)
    try:
        return HttpResponse(status=status, body=data.decode())
    except UnicodeDecodeError:
        raise HttpError("the response body is not UTF-8") from None


def _read_all(stream: streams.InputStream) -> bytes:
    chunks = []
    length = 0
    with stream:
        while True:
            try:
                chunk = stream.blocking_read(MAX_BODY_BYTES)
            except Err as error:
                if isinstance(error.value, streams.StreamError_Closed):
                    break
                raise HttpError("the response body could not be read") from None
            length += len(chunk)
            if length > MAX_BODY_BYTES:
                raise HttpError(f"the response body is over {MAX_BODY_BYTES} bytes")
            chunks.append(chunk)
    return b"".join(chunks)


def _describe(code: object) -> str:
    """A WIT ``error-code`` case as its kebab-case name, with its payload when it has one."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()
    value = getattr(code, "value", None)
    return kebab if value is None else f"{kebab} ({value!r})"
