"""Render bench results (the dict bench/run.py saves as results.json).

:func:`write_markdown` writes RESULTS.md: targets with met/missed, the
results table with ratios, worker scaling, memory, versions, machine and
the exact commands. The hand-written analysis between ``ANALYSIS_START``
and ``ANALYSIS_END`` in an existing RESULTS.md is carried over unchanged.
:func:`write_chart` draws the same numbers as a PNG with matplotlib.
"""

import re
import statistics
from dataclasses import dataclass, replace
from pathlib import Path

from servers import FLOOR, LOADS, OURS_WSGI

OURS = "httpd -w1"
BEST_PYTHON = "the best Python peer"  # a Target's peer: the fastest peer measured on its load
ANALYSIS_START = "<!-- analysis:start -->"
ANALYSIS_END = "<!-- analysis:end -->"
ANALYSIS_PLACEHOLDER = (
    "_To be written by hand from profiling (e.g. py-spy or cProfile of one worker under "
    "wrk): where a request's time goes in our server, and why each missed target is "
    "missed. `make bench` keeps whatever is written between the analysis markers._"
)
IDLE_WORKER_LIMIT_MIB = 25.0


@dataclass(frozen=True)
class Target:
    title: str
    load: str          # our load (server OURS)
    peer: str
    peer_load: str
    min_ratio: float
    zero_failed: bool = False
    server: str = OURS  # our server measured
    zero_errors: bool = False  # wrk's socket errors count against the target
    issue: int = 17  # the issue that set it


# Issue 17's targets first; the rest come from earlier issues and still hold.
TARGETS = [
    Target("1 KB file, keep-alive, vs nginx", "1k", "nginx", "1k", 1.0),
    Target("1 KB file, no keep-alive (ab), vs nginx, 0 failed", "ab-1k", "nginx", "ab-1k", 0.8,
           zero_failed=True),
    Target("1 MB file, keep-alive, vs nginx", "1m", "nginx", "1m", 1.0),
    Target("JSON /api/ping vs uvicorn's JSON ping", "ping", "uvicorn", "ping", 2.0),
    Target("JSON + 1 sqlite row vs uvicorn's JSON ping", "scores", "uvicorn", "ping", 1.0),
    Target("1 KB file, keep-alive, vs uvicorn", "1k", "uvicorn", "1k", 4.0, issue=8),
    Target("20 KB CSS with Accept-Encoding: gzip, keep-alive, vs nginx", "gzip-css", "nginx",
           "gzip-css", 1.0, issue=15),
    Target("Flask JSON hello vs the best of gunicorn sync/gthread and waitress", "flask",
           BEST_PYTHON, "flask", 1.5, server=OURS_WSGI, zero_errors=True, issue=16),
]
P99_LIMIT = 3.0  # our p99 at most this many times nginx's, on every load nginx serves too


# ---------------------------------------------------------------- summaries

@dataclass
class Summary:
    server: str
    kind: str
    load: str
    status: str
    runs: int = 0
    rps: float = None
    p50_ms: float = None
    p99_ms: float = None
    errors: int = 0
    non_2xx: int = 0
    failed: int = 0
    rps_min: float = None
    rps_max: float = None

    @property
    def spread(self):
        """(max - min) / min of req/s over the runs (None for a single run)."""
        if self.runs < 2 or not self.rps_min:
            return None
        return (self.rps_max - self.rps_min) / self.rps_min

    @property
    def measured(self):
        return self.status == "ok" and self.rps is not None


def summarize(row):
    samples = row["samples"]
    summary = Summary(row["server"], row["kind"], row["load"], row["status"], len(samples))
    if samples:
        rates = [s["rps"] for s in samples]
        summary.rps = statistics.median(rates)
        summary.p50_ms = statistics.median(s["p50_ms"] for s in samples)
        summary.p99_ms = statistics.median(s["p99_ms"] for s in samples)
        summary.errors = sum(s["errors"] for s in samples)
        summary.non_2xx = sum(s.get("non_2xx", 0) for s in samples)
        summary.failed = sum(s["failed"] for s in samples)
        summary.rps_min, summary.rps_max = min(rates), max(rates)
    return summary


class Results:
    """Lookup helpers over the summaries of one results dict."""

    def __init__(self, results):
        self.raw = results
        self.summaries = [summarize(row) for row in results["rows"]]
        self.noise = results["settings"]["noise"]

    def get(self, server, load):
        return next((s for s in self.summaries if s.server == server and s.load == load), None)

    def rps(self, server, load):
        summary = self.get(server, load)
        return summary.rps if summary and summary.measured else None

    def best_python(self, load):
        """(name, req/s) of the fastest Python peer on ``load``, or None."""
        candidates = [(s.rps, s.server) for s in self.summaries
                      if s.kind == "python" and s.load == load and s.measured]
        return max(candidates)[::-1] if candidates else None

    def ratio_to_nginx(self, summary):
        return ratio(summary.rps, self.rps("nginx", LOADS[summary.load].compare))

    def ratio_to_floor(self, summary):
        """Req/s as a fraction of bench/floor.py's on the load named by ``Load.floor``."""
        floor_load = LOADS[summary.load].floor
        return ratio(summary.rps, self.rps(FLOOR, floor_load)) if floor_load else None

    def ratio_to_best_python(self, summary):
        best = self.best_python(LOADS[summary.load].compare)
        return (ratio(summary.rps, best[1]), best[0]) if best else (None, None)

    def is_noisy(self, summary):
        return summary.spread is not None and summary.spread > self.noise

    def is_smoke(self):
        s = self.raw["settings"]
        return s["runs"] < 3 or s["duration"] != "10s" or s["ab_requests"] < 50000


def ratio(value, reference):
    return value / reference if value is not None and reference else None


# ------------------------------------------------------------------ markdown

def fmt_rate(value):
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value):
    return "-" if value is None else f"{value:.2f} ms"


def fmt_ratio(value):
    return "-" if value is None else f"{value:.2f}x"


def fmt_mib(value):
    return "-" if value is None else f"{value:.1f}"


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_section(res):
    rows = []
    for target in TARGETS:
        title = f"{target.title} (#{target.issue})"
        peer_name = target.peer
        if peer_name == BEST_PYTHON:
            peer_name = (res.best_python(target.peer_load) or (BEST_PYTHON, None))[0]
        ours, peer = res.get(target.server, target.load), res.get(peer_name, target.peer_load)
        value = ratio(res.rps(target.server, target.load), res.rps(peer_name, target.peer_load))
        required = f">= {target.min_ratio:g}x {target.peer}" + (", 0 failed" if target.zero_failed else "")
        if value is None:
            reason = next((s.status for s in (ours, peer) if s and not s.measured),
                          "not measured")
            rows.append([title, required, "-", f"n/a ({reason})" if not reason.startswith("n/a") else reason])
            continue
        measured = f"{ours.rps:,.0f} vs {peer.rps:,.0f} req/s = **{value:.2f}x**"
        if target.peer == BEST_PYTHON:
            measured += f" ({peer_name})"
        met = value >= target.min_ratio and ours.non_2xx == 0  # wrong answers are not throughput
        if ours.non_2xx:
            measured += f", {ours.non_2xx} non-2xx"
        if target.zero_failed:
            measured += f", {ours.failed} failed"
            met = met and ours.failed == 0
        if target.zero_errors:
            measured += f", {ours.errors} errors"
            met = met and ours.errors == 0
        rows.append([title, required, measured, "**met**" if met else "**missed**"])
    rows.insert(5, p99_row(res))
    idle = res.raw["memory"].get(OURS, {}).get("idle", {}).get("worker")
    rows.insert(6, ["Idle worker RSS (#17)", f"< {IDLE_WORKER_LIMIT_MIB:g} MiB",
                 "-" if idle is None else f"{idle:.1f} MiB",
                 "n/a (not measured)" if idle is None
                 else "**met**" if idle < IDLE_WORKER_LIMIT_MIB else "**missed**"])
    return table(["Target (our server, 1 worker, pinned, same run)", "Required", "Measured", "Result"],
                 rows) + "\n\nA target with non-2xx responses from our server is missed whatever its ratio."


def p99_row(res):
    """Our p99 latency against nginx's on each load both serve; the worst ratio decides."""
    ratios = []
    for load in LOADS.values():
        ours, nginx = res.get(OURS, load.key), res.get("nginx", load.compare)
        if (load.compare == load.key and ours and nginx and ours.measured and nginx.measured
                and ours.p99_ms and nginx.p99_ms):
            ratios.append((ours.p99_ms / nginx.p99_ms, load.title, ours.p99_ms, nginx.p99_ms))
    required = f"<= {P99_LIMIT:g}x nginx's p99, every load"
    title = "p99 latency at the same concurrency, vs nginx (#17)"
    if not ratios:
        return [title, required, "-", "n/a (not measured)"]
    worst, load, ours_ms, nginx_ms = max(ratios)
    measured = (f"worst: {load}, {ours_ms:.2f} vs {nginx_ms:.2f} ms = **{worst:.2f}x** "
                f"({len(ratios)} loads)")
    return [title, required, measured, "**met**" if worst <= P99_LIMIT else "**missed**"]


def results_section(res):
    rows = []
    for load in LOADS.values():
        for s in res.summaries:
            if s.load != load.key or s.kind == "scaling":
                continue
            if not s.measured:
                rows.append([s.server, load.title, s.status, "", "", "", "", "", "", "", ""])
                continue
            best_ratio, best_name = res.ratio_to_best_python(s)
            errors = f"{s.errors} ({s.failed} failed)" if load.tool == "ab" else str(s.errors)
            spread = "-" if s.spread is None else f"{s.spread:.0%}"
            noise = f"**noisy** ({spread})" if res.is_noisy(s) else spread
            rows.append([f"**{s.server}**" if s.kind == "ours" else s.server, load.title,
                         fmt_rate(s.rps), fmt_ms(s.p50_ms), fmt_ms(s.p99_ms), errors,
                         fmt_ratio(res.ratio_to_nginx(s)), fmt_ratio(res.ratio_to_floor(s)),
                         f"{fmt_ratio(best_ratio)} ({best_name})" if best_name else "-",
                         s.runs, noise])
    noisy = [f"{s.server} / {LOADS[s.load].title}" for s in res.summaries if res.is_noisy(s)]
    return table(["Server", "Load", "Req/s (median)", "p50", "p99", "Errors", "vs nginx",
                  "vs floor", "vs best Python peer", "Runs", "Spread"], rows) + (
        f"\n\n**Noisy** (spread > {res.noise:.0%}; rerun before trusting): {'; '.join(noisy)}."
        if noisy else "")


def scaling_section(res):
    base = res.rps(OURS, "1k")
    rows = []
    for s in res.summaries:
        if s.load == "1k" and s.kind in ("ours", "scaling"):
            workers = s.server.rsplit("-w", 1)[-1]
            rows.append([workers, fmt_rate(s.rps) if s.measured else s.status,
                         fmt_ms(s.p99_ms), fmt_ratio(ratio(s.rps, base)),
                         fmt_ratio(res.ratio_to_nginx(s)) if s.measured else "-"])
    return table(["Workers", "Req/s (median)", "p99", "vs 1 worker", "vs nginx"], rows)


def memory_section(res):
    rows = []
    for server, reading in res.raw["memory"].items():
        idle, load = reading["idle"], reading["load"]
        rows.append([server, fmt_mib(idle["total"]), fmt_mib(idle["master"]),
                     fmt_mib(idle["worker"]), idle["workers"],
                     fmt_mib(load["total"]), fmt_mib(load["master"]), fmt_mib(load["worker"])])
    return table(["Server", "Idle total", "Idle master", "Idle worker (max)", "Workers",
                  "Load total", "Load master", "Load worker (max)"], rows)


def environment_section(res):
    raw = res.raw
    machine = [[key, value] for key, value in raw["machine"].items()]
    versions = [[key, value] for key, value in raw["versions"].items()]
    settings = [[key, f"`{value}`"] for key, value in raw["settings"].items()]
    return "\n\n".join([table(["Machine", ""], machine), table(["Software", "Version"], versions),
                        table(["Setting", "Value"], settings)])


def existing_analysis(path):
    """The hand-written analysis block of an existing RESULTS.md, markers included."""
    if path.exists():
        match = re.search(re.escape(ANALYSIS_START) + r".*?" + re.escape(ANALYSIS_END),
                          path.read_text(), re.DOTALL)
        if match:
            return match.group(0)
    return f"{ANALYSIS_START}\n{ANALYSIS_PLACEHOLDER}\n{ANALYSIS_END}"


def write_markdown(results, path, chart_name):
    res = Results(results)
    path = Path(path)
    settings = results["settings"]
    smoke = ("\n> **Smoke run** (RUNS={runs}, DURATION={duration}, AB_REQUESTS={ab_requests}): "
             "the numbers are not representative; do not commit them.\n"
             .format(**settings)) if res.is_smoke() else ""
    notes = "".join(f"- {note}\n" for note in results["notes"]) or "- none\n"
    cpus = (f"server on CPU {settings['server_cpus']}, load generator on CPU {settings['load_cpus']}"
            if settings["server_cpus"] else "not pinned")
    text = f"""# Benchmark results

<!-- Generated file: `make bench` (bench/run.py) rewrites it. Edit only the
     "Where the time goes" section between the analysis markers; it is kept. -->
{smoke}
{results['date']} on {results['machine']['cpu']} ({results['machine']['nproc']} CPUs), {cpus}.
Each load ran {settings['runs']} time(s); the table shows the median, errors summed over the runs.

![requests per second]({chart_name})

## Targets

{targets_section(res)}

## Results

{results_section(res)}

- wrk: `-t1 -c{settings['connections']} -d{settings['duration']} --latency`, keep-alive. ab: `-n {settings['ab_requests']} -c {settings['connections']} -r`, no keep-alive.
- Errors: wrk's non-2xx/3xx responses plus socket errors (connect, read, write, timeout); for ab, failed requests plus non-2xx responses.
- "vs nginx" and "vs best Python peer" compare with the same load; the sqlite row is compared with the peers' `/api/ping`.
- "vs floor": the fraction of `bench/floor.py`, the pure Python ceiling on this machine (one `select.epoll`, find the end of each request head, send fixed 1 KB answer bytes: no parsing, stat or open). Small keep-alive answers (JSON, the sqlite row, Flask) are compared with the floor's 1 KB keep-alive rate, ab with its ab rate; "-" where the floor has no comparable load.
- Spread: (max - min) / min of req/s over the runs; **noisy** above {settings['noise']:.0%}.
- nginx serves `/api/ping` with `return 200`; gunicorn (sync, 1 worker) and uvicorn (uvloop + httptools) run `bench/peer_apps.py`; http.server serves files only. gunicorn's sync worker and http.server close the connection after every response, so their "keep-alive" runs reconnect.

## Worker scaling (our server, 1 KB file, keep-alive)

{scaling_section(res)}

All worker counts run pinned to the same server CPUs ({settings['server_cpus'] or 'not pinned'}): with one server core, extra workers can only add contention, so this shows the cost of prefork rather than a speed-up.

## Memory (RSS, MiB)

{memory_section(res)}

VmRSS from /proc/PID/status summed over the process tree; "master" is the process started, "worker" the largest child. Idle is read after the URL checks, before any load; load is the peak sampled every 0.25 s during all of that server's loads.

## Where the time goes

{existing_analysis(path)}

## Environment

{environment_section(res)}

## Commands run

Document root: a temporary directory with `index.html` (1 KB), `100k.html`, `1m.html` and `20k.css` (no `.gz` beside it: nginx compresses it on every request, we once per version), generated at run time.

```sh
{chr(10).join(results['commands'])}
```

## Notes

{notes}"""
    path.write_text(text)


# --------------------------------------------------------------------- chart

def write_chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = Results(results)
    panels = [(load.title, [s for s in res.summaries if s.load == load.key and s.kind != "scaling"]
               + _references(res, load)) for load in LOADS.values()]
    panels.append(("Our server, 1 KB file: worker scaling",
                   [s for s in res.summaries if s.load == "1k" and s.kind in ("ours", "scaling")]))
    columns = 2
    fig, axes = plt.subplots((len(panels) + 2) // columns, columns,
                             figsize=(13, 3.2 * ((len(panels) + 2) // columns)))
    axes = axes.flatten()
    for ax, (title, summaries) in zip(axes, panels):
        _bar_panel(ax, title, summaries)
    _memory_panel(axes[len(panels)], results["memory"])
    for ax in axes[len(panels) + 1:]:
        ax.axis("off")
    title = "Requests/s, median of runs (bars: min-max)"
    if res.is_smoke():
        title += " - SMOKE RUN, not representative"
    fig.suptitle(f"{title}\n{results['date']}, {results['machine']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _color(kind):
    return {"ours": "tab:red", "scaling": "tab:red", "ceiling": "tab:gray",
            "floor": "tab:olive"}.get(kind, "tab:blue")


def _references(res, load):
    """For a load compared with another one (scores -> ping), the peers' bars for that one."""
    if load.compare == load.key:
        return []
    return [replace(s, server=f"{s.server} ({s.load})") for s in res.summaries
            if s.load == load.compare and s.kind in ("ceiling", "python")]


def _bar_panel(ax, title, summaries):
    ax.set_title(title, fontsize=10)
    if not summaries:
        ax.text(0.5, 0.5, "not measured", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    names = [s.server for s in summaries]
    values = [s.rps if s.measured else 0 for s in summaries]
    low = [s.rps - s.rps_min if s.measured else 0 for s in summaries]
    high = [s.rps_max - s.rps if s.measured else 0 for s in summaries]
    ax.barh(names, values, xerr=[low, high], color=[_color(s.kind) for s in summaries], capsize=3)
    ax.invert_yaxis()
    for y, s in enumerate(summaries):
        label = f" {s.rps:,.0f}" if s.measured else f" {s.status[:40]}"
        ax.text(values[y], y, label, va="center", fontsize=8)
    ax.set_xlim(0, max(values + [1]) * 1.3)
    ax.tick_params(labelsize=8)


def _memory_panel(ax, memory):
    ax.set_title("RSS of the process tree, MiB (idle / under load)", fontsize=10)
    names = list(memory)
    idle = [memory[n]["idle"]["total"] for n in names]
    load = [memory[n]["load"]["total"] for n in names]
    positions = range(len(names))
    ax.barh([p - 0.2 for p in positions], idle, height=0.4, label="idle", color="tab:green")
    ax.barh([p + 0.2 for p in positions], load, height=0.4, label="load", color="tab:orange")
    ax.set_yticks(list(positions), names)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.tick_params(labelsize=8)
