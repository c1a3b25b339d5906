"""The README's example runs, and does what its comments say."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import trio
import trio.testing

README = Path(__file__).resolve().parents[1] / "README.md"


def _example() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert len(blocks) == 1
    # Everything but the last line, which would serve on port 6379 forever.
    *body, last = blocks[0].rstrip().splitlines()
    assert last == "trio.run(trio.serve_tcp, handler, 6379)"
    namespace: dict[str, Any] = {}
    exec("\n".join(body), namespace)
    return namespace


async def test_the_readme_handler_answers_each_request_then_closes() -> None:
    handler = _example()["handler"]
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handler, 0)
            port = listeners[0].socket.getsockname()[1]
            client = await trio.open_tcp_stream("127.0.0.1", port)
            async with client:
                await client.send_all(b"PING\r\nGET a\nlast, unended")
                await client.send_eof()
                received = b""
                while chunk := await client.receive_some():
                    received += chunk
                # The reply in order, then EOF: leaving the block closed the socket.
                assert received == b"+OK PING\r\n+OK GET a\r\n+OK last, unended\r\n"
            nursery.cancel_scope.cancel()
