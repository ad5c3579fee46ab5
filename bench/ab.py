"""A/B of two builds of our server on the same machine, in the same minutes.

    python3 bench/ab.py --base aa08a6c                 # that commit against the working tree
    python3 bench/ab.py --base main~3 --new HEAD --urls /index.html,/api/ping --rounds 4

Each build (``--base`` and ``--new``: a commit checked out with ``git worktree`` into a
temporary directory, or the working tree when ``--new`` is omitted) runs ``httpd.py -w 1
--access-log off`` with the bench's config and document root (bench/servers.py), started
once and pinned to ``--server-cpus``; ``wrk -t1 -c100`` runs on ``--load-cpus``. Every round
measures every URL on both builds, the order of the builds alternating per round, so drift
on a shared machine lands on both alike. Reported per URL and build, as medians: req/s,
and the worker's CPU time per request (utime + stime from /proc/PID/stat over the run,
divided by the requests wrk completed), with its user (Python) part. CPU per request is
steadier than req/s on a noisy machine.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers  # noqa: E402
from loadgen import parse_wrk  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """(user, system) clock ticks of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def busiest_child(pid):
    """The worker: the child of the master that used the most CPU (the bench's warm-up made
    it the busiest; a service process such as the uploads processor idles)."""
    children = [child for child, (parent, _) in servers._process_table().items()
                if parent == pid]
    return max(children, key=lambda child: sum(cpu_ticks(child)))


def checkout(rev, into):
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(into), rev],
                   check=True)
    return into


def config_for(build, ws):
    """The bench's config, without keys the build does not know (an older commit)."""
    config = servers.ours_config(ws)
    known = json.loads((build / "server_config.json").read_text())
    return {key: value for key, value in config.items() if key in known}


def start(build, ws, cpus):
    port = servers.free_port()
    config = ws.root / f"config-{build.name}.json"
    config.write_text(json.dumps(config_for(build, ws)))
    log = ws.root / f"{build.name}.log"
    argv = ["taskset", "-c", cpus, sys.executable, "httpd.py", "-w", "1", "-r", str(ws.docroot),
            "-H", servers.HOST, "-p", str(port), "--access-log", "off", "-c", str(config)]
    proc = subprocess.Popen(argv, cwd=build, stdout=subprocess.DEVNULL,
                            stderr=log.open("w"), start_new_session=True)
    servers._wait_ready(proc, port, 30, log)
    return proc, port


def wrk(port, url, duration, cpus):
    out = subprocess.run(["taskset", "-c", cpus, "wrk", "-t1", "-c100", f"-d{duration}",
                          "--latency", f"http://{servers.HOST}:{port}{url}"],
                         capture_output=True, text=True, check=True).stdout
    return parse_wrk(out)


def summarize(samples):
    """Medians of (req/s, CPU µs/request, user µs/request) over the rounds."""
    return tuple(statistics.median(sample[i] for sample in samples) for i in range(3))


def report(results, urls, names):
    lines = [f"| URL | {names[0]} req/s | {names[1]} req/s | ratio | CPU µs/request | user µs/request |",
             "|---|---:|---:|---:|---|---|"]
    for url in urls:
        (rps0, cpu0, user0), (rps1, cpu1, user1) = (summarize(results[url, name]) for name in names)
        lines.append(f"| {url} | {rps0:,.0f} | {rps1:,.0f} | {rps1 / rps0:.2f}x | "
                     f"{cpu0:.2f} -> {cpu1:.2f} | {user0:.2f} -> {user1:.2f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare against")
    parser.add_argument("--new", help="the commit to measure (default: the working tree)")
    parser.add_argument("--urls", default="/index.html,/api/ping,/api/scores/1")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", default="5s")
    parser.add_argument("--server-cpus", default="0")
    parser.add_argument("--load-cpus", default="1")
    args = parser.parse_args(argv)
    urls = args.urls.split(",")
    with tempfile.TemporaryDirectory(prefix="httpd-ab-") as tmp:
        tmp = Path(tmp)
        (tmp / "ws").mkdir()
        ws = servers.Workspace(tmp / "ws").create()
        builds = {"base": checkout(args.base, tmp / "base"),
                  "new": checkout(args.new, tmp / "new") if args.new else REPO}
        procs = {}
        try:
            for name, build in builds.items():
                procs[name] = start(build, ws, args.server_cpus)
            for name, (proc, port) in procs.items():
                servers.request(port, "POST", "/api/scores", json.dumps(servers.SCORE_ROW).encode())
                for url in urls:  # warm up, and make the worker the busiest child
                    wrk(port, url, "1s", args.load_cpus)
            workers = {name: busiest_child(proc.pid) for name, (proc, port) in procs.items()}
            results = {}
            for round_ in range(args.rounds):
                order = list(builds) if round_ % 2 == 0 else list(builds)[::-1]
                for url in urls:
                    for name in order:
                        before = cpu_ticks(workers[name])
                        sample = wrk(procs[name][1], url, args.duration, args.load_cpus)
                        after = cpu_ticks(workers[name])
                        if sample.non_2xx or sample.errors:
                            raise SystemExit(f"{name} {url}: {sample.non_2xx} non-2xx, "
                                             f"{sample.errors} errors: not a valid run")
                        user = (after[0] - before[0]) / TICKS / sample.requests * 1e6
                        cpu = user + (after[1] - before[1]) / TICKS / sample.requests * 1e6
                        results.setdefault((url, name), []).append((sample.rps, cpu, user))
                        print(f"round {round_ + 1} {url} {name}: {sample.rps:,.0f} req/s, "
                              f"{cpu:.2f} µs CPU/request ({user:.2f} user)", flush=True)
        finally:
            for proc, _ in procs.values():
                proc.terminate()
                proc.wait()
            for name in ("base", "new"):
                if builds.get(name) not in (None, REPO):
                    subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                                    str(builds[name])], check=False)
    print()
    print(report(results, urls, ["base", "new"]))


if __name__ == "__main__":
    main()
