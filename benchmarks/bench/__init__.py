"""The benchmark suite behind ``python -m benchmarks bench``.

One run measures, side by side on this machine:

* throughput (:mod:`._throughput`, peers in :mod:`._peers`): raw blocking
  sockets, asyncio and uvloop streams, trio ``send_all`` and the buffered
  writer, sending 16 B to 1 MiB messages over loopback TCP to a receiver
  process, in interleaved rounds;
* latency (:mod:`._latency`): 64-byte ping-pong with an echo process on the
  same CPU and on the other;
* memory (:mod:`._memory`): bytes per idle writer, and the peak RSS while
  pushing 1 GiB;
* a micro-benchmark (:mod:`._micro`): ``write()`` against a bare
  ``bytearray +=``;

then prints the tables with each target of :mod:`._targets` checked
(:mod:`._report`), and optionally saves the JSON document (:mod:`._json`)
and a chart (:mod:`._chart`); :func:`._run.run_bench` is the entry point, options in
:mod:`._config`.  Nothing here is imported by the library itself, and this
package imports nothing, so that the memory subprocesses and ``--help`` load
only what they use.
"""
