"""The PostgreSQL backend beyond the app suites: migrations under concurrent starts, an
outage (503, then reconnection), and the start-up error without psycopg or boto3."""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from support import PostgresCluster, ServerProcess, running_server


def test_three_instances_starting_together_migrate_once(tmp_path: Path, postgres_cluster):
    database = postgres_cluster.new_database()
    servers = [ServerProcess(tmp_path / str(n), ["scores", "sales", "citizens"],
                             database=database, workers=1) for n in range(3)]
    errors: list[BaseException] = []

    def start(server: ServerProcess) -> None:
        try:
            server.start(timeout=30)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert not errors, errors
        with servers[0].db() as conn:
            versions = conn.execute("SELECT app, version FROM schema_versions "
                                    "ORDER BY app").fetchall()
        assert versions == [("citizens", 1), ("sales", 1), ("scores", 1)]
        for server in servers:  # every instance serves the one schema
            r = server.request("POST", "/stores/", json={"address": f"from {server.port}"})
            assert r.status_code == 201
        ids = [s.request("POST", "/items/", json={"name": "x", "price": 1}).json()["id"]
               for s in servers]
        assert len(set(ids)) == 3  # one sequence: ids are never handed out twice
    finally:
        for server in servers:
            server.stop()


def test_an_outage_is_503_in_time_and_the_connection_comes_back(tmp_path: Path,
                                                                 postgres_cluster):
    own = PostgresCluster().start()  # stopped and started here: not the shared one
    try:
        with running_server(tmp_path, ["scores"], workers=1,
                            database=own.new_database()) as server:
            assert server.get("/api/scores/1").status_code == 404
            own.stop_server()
            started = time.monotonic()
            r = server.get("/api/scores/1")
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"]
            assert time.monotonic() - started < 10
            own.start_server()
            # the broken connection is replaced on the request's first statement: no 503
            assert [server.get("/api/scores/1").status_code for _ in range(3)] == [404] * 3
            created = server.request("POST", "/api/interests", json={
                "client_id": 7, "interests": ["books"]})
            assert created.status_code == 201, created.text
    finally:
        own.stop()


@pytest.mark.parametrize("module, settings, requirement", [
    ("psycopg", {"database": "postgresql:///nowhere?host=/nonexistent"},
     "framework/web/requirements-postgres.txt"),
    ("boto3", {"media_store": "s3://some-bucket/media"}, "framework/web/requirements-s3.txt"),
])
def test_a_missing_optional_package_is_one_line_at_start(tmp_path: Path, module: str,
                                                         settings: dict, requirement: str):
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / f"{module}.py").write_text(f"raise ImportError('no {module} here')\n")
    server = ServerProcess(tmp_path / "run", ["scores", "memes"], env={"PYTHONPATH": str(shim)},
                           **settings)
    with pytest.raises(RuntimeError):
        server.start()
    lines = server.stderr_path.read_text().strip().splitlines()
    assert len(lines) == 1 and module in lines[0] and f"pip install -r {requirement}" in lines[0]


def test_an_unreachable_database_is_one_line_at_start(tmp_path: Path):
    server = ServerProcess(tmp_path, ["scores"],
                           database="postgresql:///nowhere?host=/nonexistent-dir")
    with pytest.raises(RuntimeError):
        server.start()
    assert server.proc.returncode == 1
    lines = server.stderr_path.read_text().strip().splitlines()
    assert len(lines) == 1 and "cannot start" in lines[0] and "nonexistent-dir" in lines[0]


def test_sqlite_needs_neither_package(tmp_path: Path):
    """The default configuration imports neither psycopg nor boto3."""
    shim = tmp_path / "shim"
    shim.mkdir()
    for module in ("psycopg", "boto3"):
        (shim / f"{module}.py").write_text("raise SystemExit('imported')\n")
    with running_server(tmp_path / "run", ["scores", "memes", "uploads", "sales", "citizens"],
                        env={"PYTHONPATH": str(shim)}) as server:
        assert server.get("/api/scores/1").status_code == 404
        assert requests.get(server.url("/stores/top/"), timeout=10).status_code == 200
