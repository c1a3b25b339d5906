"""The processes ``python -m benchmarks sendfile`` measures: the bulk sender
(``bulk_sender.py``) and the static-file servers written without
trio_bufwriter (``static_trio.py``, ``static_asyncio.py``), beside
``examples/static_server.py``."""
