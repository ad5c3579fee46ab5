"""Running the server the way gunicorn and nginx users do: USR2 upgrades, HUP code reloads,
max_requests, pidfile and privilege drop, --check-config, log formats, the error log and
Prometheus metrics. Every test drives a real httpd.py."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from conftest import build_docroot
from support import HTTPD, ServerProcess, alive, free_port, running_server, wait_for

from framework.server import metrics
from framework.server.log import COMBINED, AccessLog, compile_format
from framework.server.messages import Response
from framework.server.protocol import Request


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_docroot(tmp_path_factory.mktemp("ops-site"))




def stop_pid(pid: int) -> None:
    """Stop a master that is not our child (a USR2 generation) and wait for it to go."""
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not alive(pid), timeout=15)


def check(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HTTPD), *args], cwd=cwd, capture_output=True,
                          check=False, text=True, timeout=30)


# == USR2 and HUP =========================================================================

REQUESTS = 150_000


@pytest.mark.skipif(shutil.which("ab") is None, reason="ab (apache2-utils) is not installed")
def test_usr2_upgrades_under_load_with_no_failed_request(tmp_path: Path, site: Path) -> None:
    pidfile = tmp_path / "httpd.pid"
    server = ServerProcess(tmp_path, [], document_root=site, workers=2, ready_path="/",
                           pidfile=str(pidfile), access_log="off").start()
    new_pid = 0
    try:
        old_pid = server.proc.pid
        assert int(pidfile.read_text()) == old_pid
        # enough requests that ab is still running when the new master takes over, however
        # fast this machine serves (30,000 took 2.3 s here, and the swap about 1 s)
        ab = subprocess.Popen(["ab", "-n", str(REQUESTS), "-c", "20", "-r",
                               f"http://127.0.0.1:{server.port}/text..txt"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(0.5)
        assert ab.poll() is None, "ab finished before the upgrade: the test proves nothing"
        server.signal(signal.SIGUSR2)
        new_pid = wait_for(lambda: (int(pidfile.read_text() or 0) if pidfile.exists()
                                    else 0) not in (0, old_pid) and int(pidfile.read_text()))
        assert ab.poll() is None, "the swap did not happen under load"
        assert server.proc.wait(20) == 0  # the old master stopped gracefully
        report, _ = ab.communicate(timeout=120)
        assert ab.returncode == 0, report
        assert re.search(rf"^Complete requests:\s+{REQUESTS}$", report, re.MULTILINE), report
        assert re.search(r"^Failed requests:\s+0$", report, re.MULTILINE), report
        assert "Non-2xx" not in report, report
        assert alive(new_pid)
        body = requests.get(server.url("/text..txt"), timeout=5).content
        assert body == b"double dot ok"
        log = server.stderr_path.read_text()
        assert f"USR2: new master {new_pid} serves" in log
    finally:
        server.stop(signal.SIGKILL)
        if new_pid:
            stop_pid(new_pid)
    assert not pidfile.exists()  # the new master removed its pidfile when it stopped


def unix_get(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"GET /text..txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def test_usr2_hands_a_unix_socket_over_and_the_last_master_removes_it(tmp_path: Path,
                                                                       site: Path) -> None:
    """The old master leaves the socket file to the new one, which removes it at its exit."""
    pidfile = tmp_path / "httpd.pid"
    sock_path = str(tmp_path / "httpd.sock")
    server = ServerProcess(tmp_path, [], document_root=site, workers=1, ready_path="/",
                           pidfile=str(pidfile), access_log="off")
    config = json.loads(server.config_path.read_text())
    config["bind"] = [f"127.0.0.1:{server.port}", f"unix:{sock_path}"]
    server.config_path.write_text(json.dumps(config))
    new_pid = 0
    try:
        server.start()
        old_pid = server.proc.pid
        assert unix_get(sock_path).startswith(b"HTTP/1.1 200 OK")
        server.signal(signal.SIGUSR2)
        new_pid = wait_for(lambda: pidfile.exists() and int(pidfile.read_text() or 0)
                           not in (0, old_pid) and int(pidfile.read_text()))
        assert server.proc.wait(20) == 0
        assert os.path.exists(sock_path), "the old master removed the socket it handed over"
        assert unix_get(sock_path).endswith(b"double dot ok")
        os.kill(new_pid, signal.SIGTERM)
        wait_for(lambda: not alive(new_pid), timeout=20)
        assert not os.path.exists(sock_path)
    finally:
        server.stop(signal.SIGKILL)
        if new_pid:
            stop_pid(new_pid)


def test_usr2_with_a_broken_config_keeps_the_old_master(tmp_path: Path, site: Path) -> None:
    pidfile = tmp_path / "httpd.pid"
    with running_server(tmp_path, [], document_root=site, workers=1, ready_path="/",
                        pidfile=str(pidfile)) as server:
        good = json.loads(server.config_path.read_text())
        server.config_path.write_text(json.dumps({**good, "no_such_key": 1}))
        server.signal(signal.SIGUSR2)
        wait_for(lambda: "exited with code 2; still serving" in server.stderr_path.read_text())
        assert int(pidfile.read_text()) == server.proc.pid
        assert server.get("/text..txt").content == b"double dot ok"
        server.config_path.write_text(json.dumps(good))


def test_hup_reloads_the_app_code(tmp_path: Path) -> None:
    app = tmp_path / "hotapp.py"
    source = ("def app(environ, start_response):\n"
              "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
              "    return [b'%s']\n")
    app.write_text(source % "version one")
    with running_server(tmp_path, [], document_root=None, workers=2, ready_path="/hot",
                        wsgi_app="hotapp:app", env={"PYTHONDONTWRITEBYTECODE": "1"}) as server:
        assert server.get("/hot").content == b"version one"
        master = server.proc.pid
        app.write_text(source % "version two, reloaded")
        server.signal(signal.SIGHUP)
        wait_for(lambda: server.get("/hot").content == b"version two, reloaded")
        assert server.proc.pid == master and server.proc.poll() is None


# == max_requests =========================================================================

def test_max_requests_retires_a_worker_with_connection_close(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=1, ready_path="/",
                        max_requests=4, keepalive_timeout=5.0) as server:
        # the readiness probe was the worker's first answer
        (worker,) = server.worker_pids()
        request = b"GET /text..txt HTTP/1.1\r\nHost: t\r\n\r\n"
        with server.connect() as a, server.connect() as b:
            a.send(request)
            assert a.response()[1]["connection"] == "keep-alive"
            b.send(request)
            assert b.response()[1]["connection"] == "keep-alive"
            a.send(request)  # the fourth: the worker retires
            status, headers, body = a.response()
            assert (status, headers["connection"], body) == (200, "close", b"double dot ok")
            assert a.closed_by_server()
            # b stays open, and its next answer is complete and says close
            b.send(request)
            status, headers, body = b.response()
            assert (status, headers["connection"], body) == (200, "close", b"double dot ok")
            assert b.closed_by_server()
        replaced = wait_for(lambda: [p for p in server.worker_pids() if p != worker])
        assert worker not in server.worker_pids()
        assert server.get("/text..txt").content == b"double dot ok"
        assert len(replaced) == 1
        assert "retired (max_requests" in server.stderr_path.read_text()


def test_max_requests_jitter_spreads_the_limit(tmp_path: Path, site: Path) -> None:
    """Each worker serves between max_requests and max_requests + jitter answers."""
    with running_server(tmp_path, [], document_root=site, workers=1, ready_path="/",
                        max_requests=3, max_requests_jitter=4,
                        access_log_format="%(p)s %(s)s") as server:
        for _ in range(40):
            response = server.get("/text..txt", headers={"Connection": "close"})
            assert response.content == b"double dot ok"
        last = server.worker_pids()
        time.sleep(1.5)  # the access log is flushed once a second
        served: dict[str, int] = {}
        for line in server.access_log.read_text().splitlines():
            pid, status = line.split()
            assert status == "200"
            served[pid] = served.get(pid, 0) + 1
    retired = [n for pid, n in served.items() if int(pid) not in last]
    assert len(retired) >= 5, served
    assert all(3 <= n <= 7 for n in retired), served


# == pidfile, user, group, umask =========================================================

@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs a root start")
def test_workers_run_as_the_unprivileged_user() -> None:
    base = Path(tempfile.mkdtemp(prefix="httpd-user-"))
    try:
        base.chmod(0o755)
        var = base / "var"
        var.mkdir()
        os.chown(var, 65534, 65534)
        pidfile = base / "run.pid"
        with running_server(base / "w", ["scores", "uploads"], workers=2, user="nobody",
                            group=str(65534), umask="027", pidfile=str(pidfile),
                            database=str(var / "db.sqlite3"),
                            media_root=str(var / "media")) as server:
            master = server.proc.pid
            assert int(pidfile.read_text()) == master
            assert uids(master) == (0, 0)
            children = server.worker_pids()  # two workers and the uploads processor
            assert len(children) == 3 and all(uids(pid) == (65534, 65534) for pid in children)
            r = server.request("POST", "/api/interests",
                               json={"client_id": 77, "interests": ["books"]})
            assert r.status_code == 201, r.text  # a worker wrote the database
            r = server.request("POST", "/upload/", files={"file": ("a.txt", b"hi", "text/plain")})
            assert r.status_code == 201, r.text  # then the processor, as nobody, moves it

            def processed() -> bool:
                return all(item["processed"] for item in server.get("/files/").json()["results"])

            wait_for(processed, timeout=10)
            stored = [p for p in (var / "media").rglob("*") if p.is_file()]
            assert stored and all(p.stat().st_uid == 65534 for p in stored)
            db = os.stat(var / "db.sqlite3")
            assert (db.st_uid, db.st_gid) == (65534, 65534)
            assert stat.S_IMODE(db.st_mode) & 0o027 == 0  # the umask applied
        assert not pidfile.exists()
    finally:
        shutil.rmtree(base)


def uids(pid: int) -> tuple[int, int]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if line.startswith(("Uid", "Gid")))
    return int(fields["Uid"].split()[1]), int(fields["Gid"].split()[1])  # effective ids


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a root start")
def test_paths_the_user_cannot_write_stop_the_start(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    server = ServerProcess(tmp_path / "w", ["scores"], user="nobody",
                           media_root=str(tmp_path / "media"))
    with pytest.raises(RuntimeError) as failure:
        server.start()
    assert "is not writable by user nobody" in str(failure.value)


# == --check-config =======================================================================

def test_check_config_validates_without_binding(tmp_path: Path, site: Path) -> None:
    config_file = tmp_path / "config.json"
    base = {"apps": [], "document_root": str(site), "access_log": "off"}
    config_file.write_text(json.dumps(base))
    port = free_port()
    with socket.socket() as taken:  # the port is in use: --check-config does not care
        taken.bind(("127.0.0.1", port))
        taken.listen()
        ok = check("-t", "-c", str(config_file), "-p", str(port), cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "configuration OK" in ok.stdout
    for extra, fragment in [
        ({"user": "no-such-user-here"}, "user 'no-such-user-here' does not exist"),
        ({"document_root": str(tmp_path / "missing")}, "document root is not a directory"),
        ({"access_log_format": "%(h)s %(zz)s"}, "unknown atom"),
        ({"umask": "999"}, "umask must be octal"),
        ({"pidfile": str(tmp_path / "nodir" / "x.pid")}, "pidfile directory does not exist"),
        ({"metrics_path": "metrics"}, "metrics_path must be a path"),
        ({"wsgi_app": "no_such_module_xyz:app"}, "cannot load"),
        ({"host": "not an address"}, "cannot listen on not an address:"),
    ]:
        config_file.write_text(json.dumps({**base, **extra}))
        bad = check("--check-config", "-c", str(config_file), cwd=tmp_path)
        assert bad.returncode != 0, extra
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0], (extra, bad.stderr)


# == access_log_format and error_log =====================================================

def test_access_log_format_atoms(tmp_path: Path, site: Path) -> None:
    line_format = ('%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
                   'm=%(m)s U=%(U)s q=%(q)s H=%(H)s B=%(B)s D=%(D)s M=%(M)s L=%(L)s p=%(p)s '
                   'in=%({X-Trace}i)s out=%({Content-Type}o)s none=%({X-None}i)s 100%%')
    with running_server(tmp_path, [], document_root=site, workers=1, ready_path="/",
                        access_log_format=line_format) as server:
        (worker,) = server.worker_pids()
        server.get("/text..txt?a=1", headers={"X-Trace": 'abc"d', "Referer": "http://r/"})
        server.request("HEAD", "/text..txt")

        def logged() -> list[str] | None:
            lines = [x for x in server.access_log.read_text().splitlines() if "text..txt" in x]
            return lines if len(lines) == 2 else None

        get, head = wait_for(logged, timeout=5)
    pattern = (r'^127\.0\.0\.1 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000\] '
               r'"GET /text\.\.txt\?a=1 HTTP/1\.1" 200 13 "http://r/" "python-requests/\S+" '
               r'm=GET U=/text\.\.txt q=a=1 H=HTTP/1\.1 B=13 D=(\d+) M=(\d+) L=(\d+\.\d{6}) '
               rf'p={worker} in=abc\\"d out=text/plain(; charset=utf-8)? none=- 100%$')
    match = re.match(pattern, get)
    assert match, get
    micros, millis, seconds = int(match[1]), int(match[2]), float(match[3])
    assert micros // 1000 == millis and abs(seconds - micros / 1e6) < 2e-6
    assert ' 200 - "-" ' in head and " B=0 " in head


def test_combined_is_the_default_and_its_fast_path() -> None:
    log = AccessLog("off")
    assert log.combined
    assert not AccessLog("off", COMBINED.replace("%(b)s", "%(B)s")).combined
    # the compiled Combined format and the fast path write the same line
    request = Request("GET", "/x?y", "HTTP/1.1", {"referer": "r", "user-agent": 'a"b'})
    response = Response(200, b"hello")
    stamp = log.timestamp(0.0)
    compiled = compile_format(COMBINED)("1.2.3.4", request, response, 5, 0.0, stamp)
    log.write("1.2.3.4", "GET /x?y HTTP/1.1", 200, 5, "r", 'a"b', 0.0)
    assert log.lines == [compiled + "\n"]


def test_error_log_file_is_reopened_on_usr1(tmp_path: Path, site: Path) -> None:
    error_log = tmp_path / "error.log"
    with running_server(tmp_path, [], document_root=site, workers=2, ready_path="/",
                        error_log=str(error_log)) as server:
        assert "listening on" in error_log.read_text()
        error_log.rename(tmp_path / "error.log.1")
        server.signal(signal.SIGUSR1)
        workers = server.worker_pids()

        def reopened() -> bool:
            text = error_log.read_text() if error_log.exists() else ""
            return all(f"[{pid}] INFO httpd: access log reopened" in text for pid in workers)

        wait_for(reopened, timeout=15)
    assert "stopping gracefully" in error_log.read_text()
    assert "stopping" not in (tmp_path / "error.log.1").read_text()


# == metrics ==============================================================================

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (\S+)$')


def scrape(server: ServerProcess) -> tuple[dict[str, float], str]:
    text = server.get("/metrics").text
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples, text


def test_metrics_are_summed_over_every_worker(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=2, ready_path="/",
                        metrics_path="/metrics") as server:
        before, _ = scrape(server)
        alive_counts = set()
        for _ in range(30):
            r = server.get("/text..txt", headers={"Connection": "close"})
            assert r.status_code == 200
        for _ in range(5):
            assert server.get("/missing", headers={"Connection": "close"}).status_code == 404
        requests.post(server.url("/text..txt"), data=b"x", timeout=5,
                      headers={"Connection": "close"})
        for _ in range(6):  # whichever worker answers, the sums are the same
            samples, text = scrape(server)
            alive_counts.add(samples.get("httpd_workers_alive"))
            get_200 = samples['httpd_requests_total{method="GET",code="200"}']
            assert get_200 - before.get('httpd_requests_total{method="GET",code="200"}', 0) \
                >= 30
            assert samples['httpd_requests_total{method="GET",code="404"}'] == 5
            assert samples['httpd_requests_total{method="POST",code="405"}'] == 1
        assert alive_counts == {2.0}
        for kind in ("httpd_requests_total counter", "httpd_request_duration_seconds histogram",
                     "httpd_connections_open gauge", "httpd_sent_bytes_total counter",
                     "httpd_worker_restarts_total counter", "httpd_workers_alive gauge"):
            assert f"# TYPE {kind}" in text
        count = samples["httpd_request_duration_seconds_count"]
        assert samples['httpd_request_duration_seconds_bucket{le="+Inf"}'] == count
        assert count == sum(v for k, v in samples.items() if k.startswith("httpd_requests_"))
        assert samples["httpd_sent_bytes_total"] >= 30 * 13
        assert samples["httpd_connections_open"] >= 1  # the scrape's own connection
        assert samples["httpd_worker_restarts_total"] == 0
        os.kill(server.worker_pids()[0], signal.SIGKILL)
        wait_for(lambda: scrape(server)[0]["httpd_worker_restarts_total"] == 1)
        after, _ = scrape(server)
        assert after['httpd_requests_total{method="GET",code="200"}'] >= get_200  # kept


def test_metrics_only_for_allowed_addresses(tmp_path: Path, site: Path) -> None:
    with running_server(tmp_path, [], document_root=site, workers=1, ready_path="/",
                        metrics_path="/metrics", metrics_allow_ips=["192.0.2.1"]) as server:
        assert server.get("/metrics").status_code == 403
    with running_server(tmp_path / "off", [], document_root=site, workers=1,
                        ready_path="/") as server:
        assert server.get("/metrics").status_code == 404  # off by default: a static path


def test_metrics_slots_keep_counting_across_workers() -> None:
    shared = metrics.SharedMetrics(slots=4)
    first = shared.claim()
    metrics.WorkerMetrics(shared, first).observe("GET", 200, 0.002, 10)
    shared.release(first)
    again = shared.claim()
    assert again == first  # reused, and its counts stay: totals never go backwards
    metrics.WorkerMetrics(shared, again).observe("BREW", 418, 20.0, 0)
    text = shared.render().decode()
    assert 'httpd_requests_total{method="GET",code="200"} 1' in text
    assert 'httpd_requests_total{method="other",code="418"} 1' in text
    assert 'httpd_request_duration_seconds_bucket{le="0.005"} 1' in text
    assert 'httpd_request_duration_seconds_bucket{le="10.0"} 1' in text
    assert 'httpd_request_duration_seconds_bucket{le="+Inf"} 2' in text
    assert "httpd_sent_bytes_total 10" in text
    assert [shared.claim() for _ in range(3)] == [2, 3, 0]  # 0: out of slots, not counted
