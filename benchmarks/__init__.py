"""trio_bufwriter's measuring lab: benchmarks and load tests, beside the library.

Not installed with ``pip install trio-bufwriter``; run it from the
repository's top folder, ``python -m benchmarks COMMAND`` (``--help`` lists
the commands), or through the nox sessions.

* :mod:`benchmarks.bench`: the benchmark suite (``bench``): throughput,
  latency, memory and ``write()`` cost, beside asyncio, uvloop and trio;
* :mod:`benchmarks.positional`: the positional writer's benchmark
  (``positional-bench``);
* :mod:`benchmarks.soak`: many connections under random load, verified
  (``soak``);
* :mod:`benchmarks.fanout`: the slow-consumer load test (``fanout``);
* :mod:`benchmarks.servers`: many connections under real load generators
  (``redis-benchmark``, ``wrk``) against the examples and the same code on
  plain trio, asyncio and uvloop (``servers``);
* :mod:`benchmarks.sendfile`: files and large payloads, ``write_file()``
  against plain trio and asyncio's ``loop.sendfile`` (``sendfile``);
* :mod:`benchmarks._worker`: the helper process the load tests drive.

It uses the library through its public API, and two private helpers that
the library's own demo needs too: ``trio_bufwriter._loopback`` (the receiver
process) and ``trio_bufwriter._cli`` (argument types).
"""
