#!/usr/bin/env python3
"""Parses wrk output and renders the table of scripts/bench/compare (standard library only).

  compare_report.py parse SERVER WORKLOAD CONNECTIONS WRK_OUTPUT   >> results.jsonl
  compare_report.py table RESULTS_JSONL META_JSON                  > table.md
"""

import json
import os
import re
import sys

SERVERS = [("sqlite", "Sekimori SQLite"), ("postgres", "Sekimori PostgreSQL"), ("peer", "oidc-provider")]
WORKLOADS = [
    ("cc_client", "client_credentials, registered client"),
    ("cc_machine", "client_credentials, machine account"),
    ("refresh", "refresh_token (each token used once)"),
    ("introspect", "introspection"),
    ("discovery", "discovery"),
    ("jwks", "JWKS"),
]
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(text):
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError("unknown latency %r" % text)
    return float(match.group(1)) * UNITS_MS[match.group(2)]


def parse(server, workload, connections, path):
    text = open(path, encoding="utf-8", errors="replace").read()
    result = {"server": server, "workload": workload, "connections": int(connections)}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        result["failed"] = text.strip()[-300:]
        return result
    result["rps"] = float(rps.group(1))
    for pct in ("50", "90", "99"):
        m = re.search(r"^\s+%s%%\s+(\S+)" % pct, text, re.M)
        if m:
            result["p" + pct] = to_ms(m.group(1))
    total = re.search(r"(\d+) requests in", text)
    result["requests"] = int(total.group(1)) if total else 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    result["socket_errors"] = sum(int(g) for g in socket.groups()) if socket else 0
    status = re.search(r"^STATUS (.*)$", text, re.M)
    if status:
        result["statuses"] = dict(kv.split("=") for kv in status.group(1).split())
    error = re.search(r"^ERROR (.*)$", text, re.M)
    if error:
        result["error"] = error.group(1)[:160]
    for key, value in re.findall(r"^EXTRA (\w+)=(\d+)$", text, re.M):
        result[key] = int(value)
    ticks = re.search(r"^CPU_TICKS (\d+)$", text, re.M)
    if ticks and result["requests"]:
        cpu = int(ticks.group(1)) / os.sysconf("SC_CLK_TCK")
        result["cpu_us_per_request"] = cpu * 1e6 / result["requests"]
    return result


def valid(r):
    return r is not None and "rps" in r and r["non2xx"] == 0 and r["socket_errors"] == 0 \
        and r.get("exhausted", 0) == 0 and r.get("inactive", 0) == 0


def cell(r):
    if r is None:
        return "—", "—"
    if "rps" not in r:
        return "failed", "—"
    rps = "{:,.0f}".format(r["rps"])
    p99 = "%.2f ms" % r["p99"] if "p99" in r else "—"
    if not valid(r):
        rps += " ⚠"
    return rps, p99


def note(label, r):
    if r is None or valid(r):
        return None
    if "rps" not in r:
        return "%s: wrk failed: %s" % (label, r.get("failed", ""))
    parts = []
    if r["non2xx"]:
        parts.append("%d of %d responses not 2xx (%s)" % (
            r["non2xx"], r["requests"], " ".join("%s=%s" % kv for kv in sorted(r.get("statuses", {}).items()))))
    if r["socket_errors"]:
        parts.append("%d socket errors" % r["socket_errors"])
    if r.get("exhausted"):
        parts.append("refresh pool exhausted for %d requests" % r["exhausted"])
    if r.get("inactive"):
        parts.append("%d introspections answered active=false" % r["inactive"])
    if r.get("error"):
        parts.append("first error: `%s`" % r["error"].replace("|", "\\|"))
    return "%s: %s" % (label, "; ".join(parts))


def table(results_path, meta_path):
    results = {}
    for line in open(results_path, encoding="utf-8"):
        if line.strip():
            r = json.loads(line)
            results[(r["server"], r["workload"], r["connections"])] = r
    meta = json.load(open(meta_path, encoding="utf-8"))
    connections = sorted({k[2] for k in results})
    out = []
    out.append("# Sekimori vs oidc-provider (scripts/bench/compare)")
    out.append("")
    for key in ("date", "commit", "machine", "load_before", "load_after", "duration", "warmup",
                "sekimori", "peer", "postgres", "wrk"):
        if key in meta:
            out.append("- %s: %s" % (key.replace("_", " "), meta[key]))
    out.append("")
    out.append("Each server pinned to core 0 (`taskset -c 0`), wrk to core 1 (`-t1`); PostgreSQL "
               "unpinned. req/s and p99 latency; ratio = Sekimori SQLite req/s ÷ oidc-provider "
               "req/s; target: ratio ≥ 3 and a lower p99. ⚠ marks a run with non-2xx answers "
               "(see the notes): its figures do not count.")
    out.append("")
    header = "| workload | conns |"
    rule = "|---|---:|"
    for _, label in SERVERS:
        header += " %s req/s | p99 |" % label
        rule += "---:|---:|"
    header += " ratio | target |"
    rule += "---:|:---:|"
    out.append(header)
    out.append(rule)
    notes = []
    for workload, wlabel in WORKLOADS:
        for c in connections:
            row = "| %s | %d |" % (wlabel, c)
            present = False
            for server, slabel in SERVERS:
                r = results.get((server, workload, c))
                present = present or r is not None
                rps, p99 = cell(r)
                row += " %s | %s |" % (rps, p99)
                n = note("%s, %s, %d conn" % (slabel, wlabel, c), r)
                if n:
                    notes.append(n)
            if not present:
                continue
            s = results.get(("sqlite", workload, c))
            p = results.get(("peer", workload, c))
            if valid(s) and valid(p) and p["rps"] > 0:
                ratio = s["rps"] / p["rps"]
                met = ratio >= 3 and s.get("p99", 1e9) < p.get("p99", 0)
                row += " %.1f× | %s |" % (ratio, "met" if met else "**not met**")
            else:
                row += " — | — |"
            out.append(row)
    out.append("")
    out.append("CPU time per request of the server process (user + system, µs; for PostgreSQL "
               "without the database's own): unlike req/s it hardly depends on what else runs on "
               "the machine, and 10⁶ ÷ it is what one dedicated core would serve if the server "
               "were CPU-bound. ratio = oidc-provider ÷ Sekimori SQLite. At one connection "
               "Sekimori's figure includes its idle polling (`server.idle_poll_microseconds`): "
               "time spent watching for the next request instead of sleeping, which counts as "
               "CPU time but is waiting.")
    out.append("")
    header = "| workload | conns |" + "".join(" %s |" % label for _, label in SERVERS) + " ratio |"
    out.append(header)
    out.append("|---|---:|" + "---:|" * (len(SERVERS) + 1))
    for workload, wlabel in WORKLOADS:
        for c in connections:
            cells = []
            for server, _ in SERVERS:
                r = results.get((server, workload, c))
                if r is None or "cpu_us_per_request" not in r:
                    cells.append("—")
                else:
                    cells.append("%.0f%s" % (r["cpu_us_per_request"], "" if valid(r) else " ⚠"))
            if all(x == "—" for x in cells):
                continue
            s = results.get(("sqlite", workload, c))
            p = results.get(("peer", workload, c))
            ratio = "—"
            if valid(s) and valid(p) and s.get("cpu_us_per_request") and p.get("cpu_us_per_request"):
                ratio = "%.1f×" % (p["cpu_us_per_request"] / s["cpu_us_per_request"])
            out.append("| %s | %d | %s | %s |" % (wlabel, c, " | ".join(cells), ratio))
    if notes:
        out.append("")
        out.append("Notes:")
        out.append("")
        for n in notes:
            out.append("- " + n)
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "parse":
        print(json.dumps(parse(*sys.argv[2:6]), ensure_ascii=False))
    elif len(sys.argv) == 4 and sys.argv[1] == "table":
        sys.stdout.write(table(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
