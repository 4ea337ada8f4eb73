"""HTTP/1.1 messages for the router's proxy: heads, body framing, relaying, errors.

Framing follows RFC 9112 section 6, hop-by-hop fields RFC 9110 section 7.6.1. Bodies are
relayed piece by piece as they arrive, never collected, so streams stay streams.
"""

from __future__ import annotations

import asyncio
import html
import json

__all__ = [
    "BUFFER_BODY_MAX",
    "CHUNKED",
    "DROP_REQUEST",
    "DROP_RESPONSE",
    "LENGTH",
    "NONE",
    "READ_SIZE",
    "TO_EOF",
    "HttpError",
    "Message",
    "body_framing",
    "copy_chunked",
    "copy_length",
    "copy_to_eof",
    "denied_response",
    "error_body",
    "error_response",
    "read_response_head",
    "response_framing",
    "response_head",
    "tunnel",
]

#: fields that describe one connection, never forwarded (RFC 9110 7.6.1), plus the legacy ones
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# the proxy writes these itself: X-Forwarded-For as the client's list plus the client's
# address, X-Forwarded-Proto as what the router speaks, and it answers Expect on its own
DROP_REQUEST = HOP_BY_HOP | {b"x-forwarded-for", b"x-forwarded-proto", b"expect"}
DROP_RESPONSE = HOP_BY_HOP | {b"x-rollsafe-revision"}

READ_SIZE = 64 * 1024
#: request bodies up to this size are read before forwarding, so that a request sent on a
#: pooled connection that the backend closed meanwhile can be sent again on a fresh one;
#: response bodies of a known length up to this size go out with their head in one write
BUFFER_BODY_MAX = 64 * 1024

NONE, LENGTH, CHUNKED, TO_EOF = range(4)
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_REASONS = {
    400: (b"Bad Request", "INVALID_ARGUMENT"),
    503: (b"Service Unavailable", "UNAVAILABLE"),
    504: (b"Gateway Timeout", "DEADLINE_EXCEEDED"),
}


class HttpError(Exception):
    """A malformed or unsupported message: the connection cannot go on."""


class Message:
    """A parsed request or response head; field names are looked up in lower case."""

    __slots__ = ("fields", "headers", "start")

    def __init__(self, head: bytes, *, response: bool = False) -> None:
        # RFC 9112 2.2: a server should ignore empty lines before a request line
        lines = head.lstrip(b"\r\n").split(b"\r\n")
        start = lines[0].split(b" ", 2)
        if response and len(start) == 2:
            start.append(b"")  # "HTTP/1.1 200" without a reason phrase
        if len(start) != 3 or not start[0] or not start[1]:
            raise HttpError("malformed start line")
        self.start = start
        self.headers: list[tuple[bytes, bytes, bytes]] = []  # (name, lower-case name, value)
        self.fields: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            # no obsolete line folding, no whitespace before the colon (request smuggling)
            if not sep or not name or line[0] in b" \t" or name[-1] in b" \t":
                raise HttpError("malformed header line")
            value = value.strip(b" \t")
            lower = name.lower()
            self.headers.append((name, lower, value))
            previous = self.fields.get(lower)
            self.fields[lower] = value if previous is None else previous + b", " + value

    def tokens(self, name: bytes) -> frozenset[bytes]:
        """The comma-separated tokens of a field, in lower case (e.g. Connection)."""
        value = self.fields.get(name)
        if not value:
            return frozenset()
        return frozenset(token.strip().lower() for token in value.split(b","))


def _content_length(value: bytes) -> int:
    # repeated fields were joined with ", "; they must agree (RFC 9112 6.3)
    values = {part.strip() for part in value.split(b",")}
    if len(values) != 1:
        raise HttpError("conflicting Content-Length")
    (text,) = values
    if not text.isdigit():
        raise HttpError("invalid Content-Length")
    return int(text)


def body_framing(message: Message) -> tuple[int, int]:
    """(kind, length) of a body from its fields; a request without either has no body."""
    coding = message.fields.get(b"transfer-encoding")
    if coding is not None:
        # Transfer-Encoding wins over Content-Length; only chunked is relayed as such
        if coding.rsplit(b",", 1)[-1].strip().lower() != b"chunked":
            raise HttpError("unsupported Transfer-Encoding")
        return CHUNKED, 0
    length = message.fields.get(b"content-length")
    if length is not None:
        return LENGTH, _content_length(length)
    return NONE, 0


def response_framing(response: Message, method: bytes) -> tuple[int, int]:
    """(kind, length) of a response body (RFC 9112 6.3)."""
    status = response.start[1]
    if method == b"HEAD" or status in (b"204", b"304") or status[0:1] == b"1":
        return NONE, 0
    coding = response.fields.get(b"transfer-encoding")
    if coding is not None:
        if coding.rsplit(b",", 1)[-1].strip().lower() == b"chunked":
            return CHUNKED, 0
        return TO_EOF, 0
    length = response.fields.get(b"content-length")
    if length is not None:
        return LENGTH, _content_length(length)
    return TO_EOF, 0


async def copy_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    while n > 0:
        data = await reader.read(min(n, READ_SIZE))
        if not data:
            raise asyncio.IncompleteReadError(b"", n)
        writer.write(data)
        n -= len(data)
        await writer.drain()


async def copy_chunked(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, keep_framing: bool
) -> int:
    """Relay a chunked body chunk by chunk; without keep_framing write only the data.

    Returns the bytes of data relayed.
    """
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or not _HEXDIGITS.issuperset(size_text):
            raise HttpError("invalid chunk size")
        size = int(size_text, 16)
        if keep_framing:
            writer.write(line)
        if size == 0:
            while True:  # trailer section, up to the empty line
                line = await reader.readuntil(b"\r\n")
                if keep_framing:
                    writer.write(line)
                if line == b"\r\n":
                    break
            await writer.drain()
            return total
        await copy_length(reader, writer, size)
        total += size
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError("chunk not terminated by CRLF")
        if keep_framing:
            writer.write(b"\r\n")
        await writer.drain()


async def copy_to_eof(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, chunked: bool
) -> int:
    """Relay a body delimited by the backend closing, as chunks when the client allows.

    Returns the bytes of data relayed.
    """
    total = 0
    while data := await reader.read(READ_SIZE):
        total += len(data)
        if chunked:
            writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            writer.write(data)
        await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
        await writer.drain()
    return total


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(READ_SIZE):
        writer.write(data)
        await writer.drain()


async def tunnel(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    backend: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Relay bytes both ways until either side closes (an upgraded connection)."""
    up = asyncio.create_task(_pipe(client[0], backend[1]))
    down = asyncio.create_task(_pipe(backend[0], client[1]))
    try:
        # websockets end with a close handshake inside the stream, so when one side's TCP
        # connection ends, the other has nothing left to say: no half-close needed. The
        # callers close both writers gracefully, which flushes what was relayed last.
        await asyncio.wait((up, down), return_when=asyncio.FIRST_COMPLETED)
    finally:
        up.cancel()
        down.cancel()
        await asyncio.gather(up, down, return_exceptions=True)


def error_body(status: int, message: str) -> bytes:
    """Google's JSON error shape, as Cloud Run's front end answers."""
    error = {"code": status, "status": _REASONS[status][1], "message": message}
    return json.dumps({"error": error}).encode()


def error_response(status: int, message: str, *, keep_alive: bool) -> bytes:
    """A whole response of the router's own (400, 503, 504), with a JSON body."""
    body = error_body(status, message)
    head = b"HTTP/1.1 %d %b\r\nContent-Type: application/json; charset=utf-8\r\n" % (
        status,
        _REASONS[status][0],
    )
    head += b"Content-Length: %d\r\n" % len(body)
    if not keep_alive:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


_DENIED = {
    403: (
        b"Forbidden",
        "<h2>Your client does not have permission to get URL <code>{path}</code> from this"
        " server.</h2>",
    ),
    401: (
        b"Unauthorized",
        "<h2>Your client does not have permission to the requested URL <code>{path}</code>.</h2>",
    ),
}
#: 401s say why in a challenge, as Cloud Run's front end does
_CHALLENGE = (
    b'WWW-Authenticate: Bearer error="invalid_token" error_description="The access token'
    b' could not be verified"\r\n'
)


def denied_response(status: int, target: bytes, *, keep_alive: bool) -> bytes:
    """Cloud Run's own HTML answer to a request without a valid ID token (403 or 401)."""
    reason, message = _DENIED[status]
    path = html.escape(target.decode("latin-1"), quote=False)
    title = reason.decode()
    body = (
        '<html><head>\n<meta http-equiv="content-type" content="text/html;charset=utf-8">\n'
        f"<title>{status} {title}</title>\n</head>\n<body text=#000000 bgcolor=#ffffff>\n"
        f"<h1>Error: {title}</h1>\n{message.format(path=path)}\n<h2></h2>\n</body></html>\n"
    ).encode()
    head = b"HTTP/1.1 %d %b\r\nContent-Type: text/html; charset=UTF-8\r\n" % (status, reason)
    if status == 401:
        head += _CHALLENGE
    head += b"Content-Length: %d\r\n" % len(body)
    if not keep_alive:
        head += b"Connection: close\r\n"
    return head + b"\r\n" + body


async def read_response_head(reader: asyncio.StreamReader, upgrade: bool) -> Message:
    """The final response head: interim ones are skipped, 101 only answers an upgrade."""
    while True:
        response = Message((await reader.readuntil(b"\r\n\r\n"))[:-4], response=True)
        status = response.start[1]
        if len(status) != 3 or not status.isdigit():
            raise HttpError("malformed status code")
        if status == b"101" and not upgrade:
            raise HttpError("101 without an upgrade request")
        # interim responses (100 Continue, 103 Early Hints) are dropped: the proxy
        # answered Expect itself, and hints are only an optimisation
        if status[0:1] != b"1" or status == b"101":
            return response


def response_head(
    response: Message,
    revision: str,
    *,
    upgrade: bool = False,
    chunked: bool = False,
    keep_alive: bool = True,
    client_version: bytes = b"HTTP/1.1",
) -> bytes:
    """The head relayed to the client: hop-by-hop fields replaced, the revision named."""
    drop = DROP_RESPONSE | response.tokens(b"connection")
    out = [b"HTTP/1.1 ", response.start[1], b" ", response.start[2], b"\r\n"]
    for name, lower, value in response.headers:
        if lower not in drop:
            out += (name, b": ", value, b"\r\n")
    out += (b"X-Rollsafe-Revision: ", revision.encode(), b"\r\n")
    if upgrade:
        out += (b"Connection: Upgrade\r\nUpgrade: ", response.fields.get(b"upgrade", b""))
        out.append(b"\r\n")
    elif chunked:
        out.append(b"Transfer-Encoding: chunked\r\n")
    if not upgrade:
        if not keep_alive:
            out.append(b"Connection: close\r\n")
        elif client_version == b"HTTP/1.0":
            out.append(b"Connection: keep-alive\r\n")
    out.append(b"\r\n")
    return b"".join(out)
