"""Fast tests of ``python -m benchmarks sendfile``.

Every variant runs for real on a 2 MiB file and one round; the static
servers answer a real GET.  No test looks at how fast anything was, only
at the bytes and at what the report says.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from benchmarks import sendfile
from benchmarks.__main__ import main
from benchmarks.sendfile_servers.bulk_sender import CHUNK, VARIANTS, chunk
from benchmarks.servers._process import running_server


def test_every_bulk_variant_delivers_the_file(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    size = 2 * CHUNK + 12345
    crc = sendfile.make_file(path, size)
    for variant in VARIANTS:
        result = sendfile.transfer(variant, path, verify=crc, lag=True)
        assert result["gbps"] > 0
        assert result["user"] >= 0
        assert result["sys"] >= 0
        assert (result["lag_ms"] is None) == (variant == "raw-sendall")


def test_a_transfer_with_the_wrong_crc_fails(tmp_path: Path) -> None:
    path = tmp_path / "file.bin"
    crc = sendfile.make_file(path, CHUNK)
    with pytest.raises(sendfile.WrongBytes, match="CRC"):
        sendfile.transfer("bufwriter", path, verify=crc ^ 1)


@pytest.mark.parametrize("variant", list(sendfile.STATIC_SERVERS))
def test_every_static_server_answers_with_the_file(tmp_path: Path, variant: str) -> None:
    root = tmp_path / "root"
    root.mkdir()
    data = chunk()
    for name, size in sendfile.WRK_FILES.items():
        (root / name).write_bytes(data[:size])
    command = [sys.executable, str(sendfile.STATIC_SERVERS[variant]), "--root", str(root)]
    env = {"PYTHONPATH": str(sendfile.ROOT), "PATH": "/usr/bin:/bin"}
    with running_server(
        variant, command, log=tmp_path / "log", env=env, cwd=sendfile.ROOT
    ) as server:
        for name, size in sendfile.WRK_FILES.items():
            sendfile.check_static(server.port, name, data[:size])
        with pytest.raises(sendfile.WrongBytes):
            sendfile.check_static(server.port, "64k.bin", data[: 64 * 1024 - 1] + b"?")


def test_the_command_runs_and_reports_the_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parts = "bulk,bytes,wrk" if shutil.which("wrk") else "bulk,bytes"
    status = main(
        ["sendfile", "--size-mib", "2", "--rounds", "1", "--wrk-seconds", "1",
         "--parts", parts, "--workdir", str(tmp_path), "--json", str(tmp_path / "out.json")]
    )  # fmt: skip
    output = capsys.readouterr().out
    assert status == 0, output
    assert "bulk: GB/s, bufwriter / trio-read" in output
    assert "bytes: GB/s, bufwriter / raw sendall" in output
    assert (tmp_path / "out.json").exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith("sendfile-bench-")] == []
