"""A WebSocket server with wsproto over a BufferedStream.

wsproto, like h11, does no I/O: ``ws.send(event)`` returns bytes, which go to
``conn.write()``; bytes read go to ``ws.receive_data()``.  Many small frames
(a chat room, a ticker) then leave in few sends, and ``drain()`` slows the
producer down when the client reads slowly.

``python docs/snippets/websocket_wsproto.py`` serves on a loopback port,
connects a wsproto client that sends 100 messages, and prints the replies.
"""

from __future__ import annotations

from functools import partial

import trio
from wsproto import ConnectionState, ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Request,
    TextMessage,
)

from trio_bufwriter import open_buffered_stream


async def handle(stream: trio.SocketStream) -> None:
    """Answer every text message with the same text in capitals."""
    async with open_buffered_stream(stream) as conn:
        ws = WSConnection(ConnectionType.SERVER)
        while ws.state is not ConnectionState.CLOSED:
            data = await conn.receive_some()
            ws.receive_data(data or None)  # None: the client closed the TCP connection
            for event in ws.events():
                if isinstance(event, Request):
                    conn.write(ws.send(AcceptConnection()))
                elif isinstance(event, TextMessage):
                    conn.write(ws.send(TextMessage(data=event.data.upper())))
                elif isinstance(event, (Ping, CloseConnection)):
                    conn.write(ws.send(event.response()))  # a pong, or our close frame
            await conn.drain()
            if not data:
                break
        # Leaving the block sends the close frame still queued, then closes.


async def client(port: int, count: int) -> list[str]:
    """A plain wsproto client: send *count* messages, collect the replies, close."""
    replies = []
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send_all(ws.send(Request(host="localhost", target="/shout")))
        while ws.state is not ConnectionState.CLOSED:
            data = await stream.receive_some()
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    for i in range(count):
                        await stream.send_all(ws.send(TextMessage(data=f"message {i}")))
                elif isinstance(event, TextMessage):
                    replies.append(event.data)
                    if len(replies) == count:
                        await stream.send_all(ws.send(CloseConnection(code=1000)))
            if not data:
                break
    return replies


async def main() -> list[str]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        replies = await client(listeners[0].socket.getsockname()[1], 100)
        nursery.cancel_scope.cancel()
    return replies


if __name__ == "__main__":
    replies = trio.run(main)
    print(len(replies), "replies:", replies[:3], "...")
