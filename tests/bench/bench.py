#!/usr/bin/env python3
"""Helpers for tests/bench/run.sh: parsing tool output, counting upstream fetches, sampling a
process's memory, and the final report. Standard library only.

  bench.py fetches COUNTS.json DIGEST...    one line per digest: "<digest> <n>", n = upstream
                                            GET blob requests for it that sent content (200/206)
  bench.py upstream-total COUNTS.json       upstream requests of any kind (the fake's counts)
  bench.py wrk OUTPUT                       "rps p50_ms p99_ms non2xx socket_errors requests"
  bench.py hey OUTPUT                       "rps p99_ms ok non_ok errors"
  bench.py ab OUTPUT                        "rps p99_ms complete failed non2xx" (ab -k -i)
  bench.py sample PID OUT.json STOPFILE MAXSEC
                                            resets the process's VmHWM (clear_refs 5), samples
                                            VmRSS and its open fds every 20 ms until STOPFILE
                                            exists, the process ends or MAXSEC pass; writes
                                            {"peak_kib", "hwm_kib", "max_rss_kib", "max_fds",
                                            "max_anon_kib", "max_file_kib" (RssAnon, RssFile:
                                            mmapped file pages count in RSS), "samples",
                                            "hwm_reset"}
  bench.py report RESULTS.tsv META.json OUT.json
                                            prints the table and writes results.json
  bench.py markdown RESULTS.json            the table of a results.json as Markdown (for the README)
  bench.py push-blob REGISTRY_URL REPO MIB SEED
                                            pushes one blob of MIB MiB of deterministic random
                                            bytes (1 MiB chunks, each from its own seed) and
                                            prints its digest
  bench.py push-image REGISTRY_URL REPO TAG LAYER_DIGEST LAYER_SIZE FROM_REPO
                                            pushes a config and an OCI image manifest whose one
                                            layer is a blob already in FROM_REPO (mounted into
                                            REPO); prints "<manifest digest> <config digest>
                                            <config size>"
  bench.py tiny-images REGISTRY_URL REPO N SEED OUT
                                            pushes N distinct tiny images (a 1 KiB layer and a
                                            config each) as REPO:t000...; OUT gets one line per
                                            image: "<tag> <manifest> <config> <layer>"
  bench.py pull-images BASE_URL LIST THREADS
                                            pulls every image of a tiny-images LIST from
                                            BASE_URL/v2/<repo path>, THREADS at a time: the
                                            manifest by tag, then its config and layer, each
                                            checked against its digest; BASE_URL ends with the
                                            repository ("http://H:P/v2/hub/bench/pace")
  bench.py put-rate AWS_COUNTS.json         aws_fake.py's manifest PUTs answered 201 on the data
                                            listener: "n max_in_1s mean_per_s span_s" (the
                                            busiest window [t, t + 1 s) over the requests' "t")
  bench.py ecr-uploads AWS_COUNTS.json      "puts patches posts completed bytes" of aws_fake.py's
                                            blob uploads
  bench.py up-bytes COUNTS.json IMAGES.json REPO
                                            blob bytes fake_upstream.py sent for REPO's image
                                            (each GET blob answered 200 counts the blob's size;
                                            206 the size of its Content-Range): "bytes gets
                                            image_bytes" (image_bytes: its blobs, once each)

RESULTS.tsv lines: "value<TAB>FIGURE<TAB>WHO<TAB>NUMBER" or "note<TAB>FIGURE<TAB>WHO<TAB>TEXT".
"""

import hashlib
import http.client
import json
import os
import random
import urllib.parse
import re
import statistics
import sys
import time

DIGEST_RE = re.compile(r"/blobs/(sha256:[0-9a-f]{64})$")


def load_counts(path):
    with open(path) as f:
        return json.load(f)


def cmd_fetches(path, digests):
    reqs = load_counts(path)["requests"]
    n = {d: 0 for d in digests}
    for r in reqs:
        if r.get("kind") != "GET blob" or r.get("status") not in (200, 206):
            continue
        m = DIGEST_RE.search(r.get("path", ""))
        if m and m.group(1) in n:
            n[m.group(1)] += 1
    for d in digests:
        print(d, n[d])


def cmd_upstream_total(path):
    print(len(load_counts(path)["requests"]))


def to_ms(num, unit):
    v = float(num)
    return {"us": v / 1000.0, "ms": v, "s": v * 1000.0, "m": v * 60000.0}[unit]


def cmd_wrk(path):
    text = open(path).read()
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    total = re.search(r"^\s+(\d+) requests in", text, re.M)
    if not (rps and p50 and p99 and total):
        sys.exit("cannot parse wrk output in %s" % path)
    errs = sum(int(x) for x in sock.groups()) if sock else 0
    print("%.1f %.3f %.3f %d %d %d" % (float(rps.group(1)), to_ms(*p50.groups()), to_ms(*p99.groups()),
                                       int(non2xx.group(1)) if non2xx else 0, errs, int(total.group(1))))


def cmd_hey(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"99% in ([\d.]+) secs", text)
    if p99 is None:
        # With under ~100 responses hey prints no 99% line (it prints "0% in 0.0000 secs"):
        # the slowest response bounds the p99 from above.
        p99 = re.search(r"Slowest:\s+([\d.]+) secs", text)
    if not (rps and p99):
        sys.exit("cannot parse hey output in %s" % path)
    ok = non_ok = 0
    for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text):
        if code.startswith("2"):
            ok += int(n)
        else:
            non_ok += int(n)
    errors = 0
    if "Error distribution:" in text:
        for n in re.findall(r"^\s+\[(\d+)\]\s", text.split("Error distribution:", 1)[1], re.M):
            errors += int(n)
    print("%.1f %.3f %d %d %d" % (float(rps.group(1)), float(p99.group(1)) * 1000.0, ok, non_ok, errors))


def cmd_ab(path):
    text = open(path).read()
    rps = re.search(r"Requests per second:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+(\d+)", text, re.M)  # whole milliseconds
    done = re.search(r"Complete requests:\s+(\d+)", text)
    if not (rps and p99 and done):
        sys.exit("cannot parse ab output in %s" % path)
    failed = re.search(r"Failed requests:\s+(\d+)", text)
    non2xx = re.search(r"Non-2xx responses:\s+(\d+)", text)
    print("%.1f %d %d %d %d" % (float(rps.group(1)), int(p99.group(1)), int(done.group(1)),
                                int(failed.group(1)) if failed else 0,
                                int(non2xx.group(1)) if non2xx else 0))


def status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cmd_sample(pid, out, stopfile, maxsec):
    pid, maxsec = int(pid), float(maxsec)
    reset = False
    try:
        with open("/proc/%d/clear_refs" % pid, "w") as f:
            f.write("5")
        reset = True
    except OSError:
        pass
    max_rss = max_fds = max_anon = max_file = samples = 0
    end = time.monotonic() + maxsec
    hwm = None
    while time.monotonic() < end and samples < 1_000_000:
        rss = status_kib(pid, "VmRSS")
        if rss is None:
            break
        h = status_kib(pid, "VmHWM")
        hwm = h if h is not None else hwm
        max_rss = max(max_rss, rss)
        max_anon = max(max_anon, status_kib(pid, "RssAnon") or 0)
        max_file = max(max_file, status_kib(pid, "RssFile") or 0)
        try:
            max_fds = max(max_fds, len(os.listdir("/proc/%d/fd" % pid)))
        except OSError:
            pass
        samples += 1
        if os.path.exists(stopfile):
            break
        time.sleep(0.02)
    h = status_kib(pid, "VmHWM")
    hwm = h if h is not None else hwm
    peak = max(max_rss, hwm or 0) if reset else max_rss
    with open(out, "w") as f:
        json.dump({"peak_kib": peak, "hwm_kib": hwm, "max_rss_kib": max_rss, "max_fds": max_fds,
                   "max_anon_kib": max_anon, "max_file_kib": max_file,
                   "samples": samples, "hwm_reset": reset}, f)


# ---- report ------------------------------------------------------------------------------

WHO = ("ours", "peer", "ref")

# id, label, unit, ref label, format, comparison with ref ("ratio" or "diff"), direction
# ("higher" is better or "lower"), target text
ROWS = [
    ("warm_blob_mbps", "1 warm blob GET ({warm_mib} MiB), single stream", "MB/s", "nginx", "%.0f", "ratio",
     "higher", ">= 0.9 x nginx"),
    ("warm_pull_s", "2 warm skopeo copy (5 x {big_mib} MiB)", "s", "direct (registry)", "%.3f", "ratio",
     "lower", "<= 1.1 x direct"),
    ("warm_pull_upstream", "2 ... upstream requests during a warm pull", "req", "", "%.0f", "none",
     "lower", "0"),
    ("cold_pull_s", "3 cold skopeo copy (5 x {big_mib} MiB)", "s", "direct (via fake)", "%.3f", "ratio",
     "lower", "<= 1.15 x direct"),
    ("cold_pull_fetches", "3 ... upstream GETs per blob (6 blobs)", "GETs", "", "%.0f", "none",
     "lower", "exactly 1 each"),
    ("cold_pull_upstream", "3 ... upstream requests per cold pull", "req", "", "%.0f", "none",
     "lower", ""),
    ("ttfb_ms", "4 cold blob TTFB ({ttfb_mib} MiB)", "ms", "direct (via fake)", "%.2f", "diff",
     "lower", "<= direct + 20 ms"),
    ("mget_rps", "5 manifest GET by fresh tag, 64 conns (wrk)", "req/s", "nginx 2 KiB", "%.0f", "ratio",
     "higher", ">= 0.5 x nginx"),
    ("mget_p99_ms", "5 ... p99 latency", "ms", "nginx 2 KiB", "%.2f", "ratio", "lower", "<= 5 ms"),
    ("mhead_rps", "5 manifest HEAD by fresh tag, 64 conns (hey)", "req/s", "nginx 2 KiB", "%.0f", "ratio",
     "higher", ">= 0.5 x nginx"),
    ("mhead_p99_ms", "5 ... p99 latency", "ms", "nginx 2 KiB", "%.2f", "ratio", "lower", "<= 5 ms"),
    ("mhead_ab_rps", "5 manifest HEAD, 64 conns, with ab -k -i (a lighter client)", "req/s", "nginx 2 KiB",
     "%.0f", "ratio", "higher", ""),
    ("mhead_ab_p99_ms", "5 ... p99 latency (ab: whole ms)", "ms", "nginx 2 KiB", "%.0f", "ratio", "lower",
     ""),
    ("herd_fetches", "6 herd: {herd_n} cold GETs of {herd_mib} MiB, upstream GETs", "GETs", "", "%.0f",
     "none", "lower", "exactly 1"),
    ("herd_wall_s", "6 ... herd wall time", "s", "1 cold GET (same server)", "%.3f", "ratio", "lower",
     "<= 1.5 x 1 cold GET"),
    ("herd_warm_wall_s", "6 ... the same herd again, warm (delivery alone)", "s",
     "nginx, the same herd", "%.3f", "ratio", "lower", ""),
    ("single_cold_s", "6 ... one cold GET alone", "s", "direct (via fake)", "%.3f", "ratio", "lower", ""),
    ("rss_conc_mib", "7 peak RSS, {rss_n} concurrent GETs of cached {rss_mib} MiB", "MiB", "", "%.1f",
     "none", "lower", "<= 64 MiB"),
    ("rss_conc_fds", "7 ... open fds at peak (concurrency reached)", "fds", "", "%.0f", "none", "higher",
     ""),
    ("rss_cold_big_mib", "7 peak RSS, one cold GET of {warm_mib} MiB", "MiB", "cold GET of {rss_mib} MiB",
     "%.1f", "diff", "lower", "<= 64 MiB, <= small + 8 MiB"),
    ("tag_p50_ms", "8 manifest GET by tag, {tags_n} tags vs 10, 1 conn p50", "ms", "10 tags", "%.3f",
     "ratio", "lower", "< 2 x 10 tags"),
    ("tag_p99_ms", "8 ... p99", "ms", "10 tags", "%.3f", "ratio", "lower", ""),
    # The ECR tier (tests/bench/ecr.sh). No peer: the reference is the same proxy or ECR itself.
    ("ecr_push_cold_s", "E1 cold skopeo copy (5 x {big_mib} MiB), ECR push on", "s", "push off", "%.3f",
     "ratio", "lower", "<= 1.1 x push off"),
    ("ecr_read_s", "E2 cold pull read through ECR, upstream down (5 x {big_mib} MiB)", "s",
     "direct from ECR (fake)", "%.3f", "ratio", "lower", "<= 1.15 x direct"),
    ("ecr_push_rss_mib", "E3 peak RSS, pull and push of a {warm_mib} MiB layer", "MiB", "", "%.1f", "none",
     "lower", "<= 64 MiB"),
    ("ecr_push_upload_reqs", "E3 ... upload requests per blob pushed (PUT + PATCH)", "req", "", "%.2f",
     "none", "lower", "1 (one PUT)"),
    ("ecr_put_max_1s", "E4 manifest PUTs to ECR, {pace_n} images: busiest second", "PUT/s", "", "%.0f",
     "none", "lower", "<= 10 in any 1 s"),
    ("ecr_put_mean_rate", "E4 ... mean rate", "PUT/s", "", "%.2f", "none", "lower", ""),
    ("ecr_two_once_x", "E5 two appliances pull one cold image at once: upstream blob bytes", "x image",
     "", "%.2f", "none", "lower", ""),
    ("ecr_two_once_gets", "E5 ... upstream blob GETs (6 blobs)", "GETs", "", "%.0f", "none", "lower", ""),
    ("ecr_two_after_x", "E5 the second pulls after the first's push: upstream blob bytes", "x image", "",
     "%.2f", "none", "lower", ""),
    ("ecr_two_after_gets", "E5 ... upstream blob GETs", "GETs", "", "%.0f", "none", "lower", ""),
    # The operations figures (tests/bench/ops.sh). ours: while the sweep runs / {ops_tags}
    # tags; ref: no sweep / {ops_peer_tags} tags, on the same proxy.
    ("ops_gc_p50_ms", "O1 manifest GET by fresh tag ({ops_conns} conns) while a sweep expires {ops_expire} of "
     "{ops_images} images: p50", "ms", "no sweep", "%.3f", "ratio", "lower", ""),
    ("ops_gc_p99_ms", "O1 ... p99", "ms", "no sweep", "%.3f", "ratio", "lower", ""),
    ("ops_gc_p999_ms", "O1 ... p99.9", "ms", "no sweep", "%.3f", "ratio", "lower", ""),
    ("ops_gc_max_ms", "O1 ... slowest request", "ms", "no sweep", "%.1f", "ratio", "lower", ""),
    ("ops_gc_rps", "O1 ... requests/s", "req/s", "no sweep", "%.0f", "ratio", "higher", ""),
    ("ops_gc_s", "O1 the sweep's wall time (gc command)", "s", "", "%.3f", "none", "lower", ""),
    ("ops_gc_images", "O1 ... images expired", "images", "", "%.0f", "none", "higher", ""),
    ("ops_gc_files", "O1 ... files removed", "files", "", "%.0f", "none", "higher", ""),
    ("ops_list_cli_rss_mib", "O2 `list --output json` of {ops_tags} tags vs {ops_peer_tags}: CLI peak RSS",
     "MiB", "{ops_peer_tags} tags", "%.1f", "ratio", "lower", ""),
    ("ops_list_daemon_rss_mib", "O2 ... daemon peak RSS during the walk", "MiB", "{ops_peer_tags} tags",
     "%.1f", "ratio", "lower", ""),
    ("ops_list_daemon_growth_mib", "O2 ... daemon RSS growth over its RSS before the walk", "MiB",
     "{ops_peer_tags} tags", "%.1f", "diff", "lower", ""),
    ("ops_list_s", "O2 ... wall time", "s", "{ops_peer_tags} tags", "%.3f", "ratio", "lower", ""),
    ("ops_list_tags_per_s", "O2 ... tags/s", "tags/s", "{ops_peer_tags} tags", "%.0f", "ratio", "higher", ""),
    ("ops_list_text_cli_rss_mib", "O2 `list` (text) of {ops_tags} tags: CLI peak RSS", "MiB",
     "{ops_peer_tags} tags", "%.1f", "ratio", "lower", ""),
    ("ops_list_text_s", "O2 ... wall time", "s", "{ops_peer_tags} tags", "%.3f", "ratio", "lower", ""),
]


def summarize(vals):
    if not vals:
        return None
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "runs": vals}


def fmt_cell(s, fmt):
    if s is None:
        return "-"
    med = fmt % s["median"]
    if len(s["runs"]) > 1 and s["min"] != s["max"]:
        return "%s (%s-%s)" % (med, fmt % s["min"], fmt % s["max"])
    return med


def verdict(fig, summ):
    """PASS, MISS or '' (no target) for ours, with the reason."""
    o = summ.get("ours")
    r = summ.get("ref")
    if o is None:
        return "", ""
    om = o["median"]
    runs = o["runs"]
    if fig == "warm_blob_mbps" and r:
        return ("PASS" if om >= 0.9 * r["median"] else "MISS"), ""
    if fig == "warm_pull_s" and r:
        return ("PASS" if om <= 1.1 * r["median"] else "MISS"), ""
    if fig == "warm_pull_upstream":
        return ("PASS" if max(runs) == 0 else "MISS"), ""
    if fig == "cold_pull_s" and r:
        return ("PASS" if om <= 1.15 * r["median"] else "MISS"), ""
    if fig == "cold_pull_fetches":
        return ("PASS" if min(runs) == 1 and max(runs) == 1 else "MISS"), ""
    if fig == "ttfb_ms" and r:
        return ("PASS" if om <= r["median"] + 20.0 else "MISS"), ""
    if fig in ("mget_rps", "mhead_rps") and r:
        return ("PASS" if om >= 0.5 * r["median"] else "MISS"), ""
    if fig in ("mget_p99_ms", "mhead_p99_ms"):
        return ("PASS" if om <= 5.0 else "MISS"), ""
    if fig == "herd_fetches":
        return ("PASS" if min(runs) == 1 and max(runs) == 1 else "MISS"), ""
    if fig == "herd_wall_s" and r:
        return ("PASS" if om <= 1.5 * r["median"] else "MISS"), ""
    if fig == "rss_conc_mib":
        return ("PASS" if om <= 64.0 else "MISS"), ""
    if fig == "rss_cold_big_mib" and r:
        return ("PASS" if om <= 64.0 and om <= r["median"] + 8.0 else "MISS"), ""
    if fig == "tag_p50_ms" and r:
        return ("PASS" if om < 2.0 * r["median"] else "MISS"), ""
    if fig == "ecr_push_cold_s" and r:
        return ("PASS" if om <= 1.1 * r["median"] else "MISS"), ""
    if fig == "ecr_read_s" and r:
        return ("PASS" if om <= 1.15 * r["median"] else "MISS"), ""
    if fig == "ecr_push_rss_mib":
        return ("PASS" if om <= 64.0 else "MISS"), ""
    if fig == "ecr_push_upload_reqs":
        return ("PASS" if min(runs) == 1 and max(runs) == 1 else "MISS"), ""
    if fig == "ecr_put_max_1s":
        # A rate limit: every run must stay under it, not only the median.
        return ("PASS" if max(runs) <= 10 else "MISS"), ""
    return "", ""


def compare(a, b, how):
    if a is None or b is None:
        return "-"
    if how == "ratio":
        return "%.2fx" % (a["median"] / b["median"]) if b["median"] else "-"
    if how == "diff":
        return "%+.2f" % (a["median"] - b["median"])
    return "-"


def cmd_report(tsv, meta_path, out):
    meta = json.load(open(meta_path))
    values, notes = {}, []
    for line in open(tsv):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 4:
            continue
        kind, fig, who, val = parts
        if kind == "value":
            values.setdefault(fig, {}).setdefault(who, []).append(float(val))
        elif kind == "note":
            notes.append({"figure": fig, "who": who, "text": val})
    params = meta.get("params", {})
    table, figures = [], {}
    for fig, label, unit, ref_label, fmt, how, better, target in ROWS:
        label = label.format(**params)
        ref_label = ref_label.format(**params)
        summ = {w: summarize(values.get(fig, {}).get(w, [])) for w in WHO}
        if not any(summ.values()):
            continue  # not measured in this run (BENCH_ONLY)
        v, _ = verdict(fig, summ)
        figures[fig] = {
            "label": label, "unit": unit, "ref": ref_label, "target": target, "verdict": v,
            "ours": summ["ours"], "peer": summ["peer"], "ref_value": summ["ref"],
            "ours_vs_peer": (summ["ours"]["median"] / summ["peer"]["median"]
                             if summ["ours"] and summ["peer"] and summ["peer"]["median"] else None),
            "ours_vs_ref": (None if not (summ["ours"] and summ["ref"]) else
                            (summ["ours"]["median"] / summ["ref"]["median"] if how == "ratio" and
                             summ["ref"]["median"] else
                             summ["ours"]["median"] - summ["ref"]["median"] if how == "diff" else None)),
            "ours_vs_ref_kind": how,
        }
        table.append([label, unit, fmt_cell(summ["ours"], fmt), fmt_cell(summ["peer"], fmt),
                      fmt_cell(summ["ref"], fmt), ref_label or "-",
                      compare(summ["ours"], summ["peer"], "ratio"), compare(summ["ours"], summ["ref"], how),
                      target or "-", v])
    head = ["figure", "unit", "ours", "peer (distribution)", "ref", "ref is", "ours/peer",
            "ours vs ref", "target", ""]
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).ljust(widths[i]) for i, c in enumerate(r)).rstrip()
    m = meta.get("machine", {})
    print()
    print("ecr-ptc-proxy benchmark (%s): %s runs per figure, median (min-max); %s" % (
        meta.get("mode"), params.get("runs"), meta.get("date")))
    print("machine: %s cores, %s, kernel %s, %s GiB RAM" % (
        m.get("nproc"), m.get("cpu_model"), m.get("kernel"), m.get("mem_gib")))
    print("'ours vs ref' is a ratio (x) or a difference in the row's unit (+/-).")
    print()
    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in table:
        print(line(r))
    npass = sum(1 for f in figures.values() if f["verdict"] == "PASS")
    nmiss = sum(1 for f in figures.values() if f["verdict"] == "MISS")
    print()
    print("targets: %d PASS, %d MISS" % (npass, nmiss))
    print()
    print("other measurements (median, min-max):")
    known = {r[0] for r in ROWS}
    others = {}
    for fig in sorted(values):
        if fig in known:
            continue
        others[fig] = {w: summarize(v) for w, v in values[fig].items()}
        print("%s: %s" % (fig, ", ".join("%s %s" % (w, fmt_cell(s, "%.4g")) for w, s in others[fig].items())))
    if notes:
        print()
        print("notes:")
        for n in notes:
            print("  [%s %s] %s" % (n["figure"], n["who"], n["text"]))
    result = {"mode": meta.get("mode"), "only": meta.get("only") or None, "date": meta.get("date"), "machine": m, "params": params,
              "peer": meta.get("peer"), "limit": meta.get("limit"), "figures": figures,
              "other": others, "notes": notes, "targets": {"pass": npass, "miss": nmiss}}
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


def cmd_markdown(path):
    res = json.load(open(path))
    fmts = {r[0]: r[4] for r in ROWS}
    print("| figure | ours | peer (distribution) | reference | ours vs ref | target | |")
    print("|---|---|---|---|---|---|---|")
    for fig, f in res["figures"].items():
        fmt = fmts.get(fig, "%.4g")
        ref = fmt_cell(f["ref_value"], fmt)
        if f["ref_value"] is not None and f["ref"]:
            ref += " (%s)" % f["ref"]
        vs = "-"
        if f["ours_vs_ref"] is not None:
            vs = ("%.2fx" % f["ours_vs_ref"] if f["ours_vs_ref_kind"] == "ratio" else
                  "%+.2f" % f["ours_vs_ref"])
        print("| %s (%s) | %s | %s | %s | %s | %s | %s |" % (
            f["label"], f["unit"], fmt_cell(f["ours"], fmt), fmt_cell(f["peer"], fmt), ref, vs,
            f["target"] or "-", f["verdict"]))


def cmd_push_blob(registry, repo, mib, seed):
    mib = int(mib)
    chunks = [random.Random("bench:%s:%d" % (seed, i)).randbytes(1 << 20) for i in range(mib)]
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    digest = "sha256:" + h.hexdigest()
    u = urllib.parse.urlsplit(registry)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    r = conn.getresponse()
    r.read()
    if r.status == 200:
        print(digest)
        return
    conn.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"", headers={"Content-Length": "0"})
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        sys.exit("POST upload: %d" % r.status)
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    path = loc.path + "?" + (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": digest})
    conn.putrequest("PUT", path)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(mib << 20))
    conn.endheaders()
    for c in chunks:
        conn.send(c)
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        sys.exit("PUT blob: %d %s" % (r.status, body[:300]))
    print(digest)


OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def jdump(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put_blob(conn, repo, data):
    digest = sha(data)
    conn.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
    r = conn.getresponse()
    r.read()
    if r.status == 200:
        return digest
    conn.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"", headers={"Content-Length": "0"})
    r = conn.getresponse()
    r.read()
    if r.status != 202:
        sys.exit("POST upload: %d" % r.status)
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    path = loc.path + "?" + (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": digest})
    conn.request("PUT", path, body=data, headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        sys.exit("PUT blob: %d %s" % (r.status, body[:300]))
    return digest


def put_manifest(conn, repo, tag, manifest):
    conn.request("PUT", "/v2/%s/manifests/%s" % (repo, tag), body=manifest,
                 headers={"Content-Type": OCI_MANIFEST})
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        sys.exit("PUT manifest: %d %s" % (r.status, body[:300]))
    return sha(manifest)


def image_manifest(config, layers):
    return jdump({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                  "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
                  "layers": [{"mediaType": OCI_LAYER, "digest": d, "size": n} for d, n in layers]})


def registry_conn(registry):
    u = urllib.parse.urlsplit(registry)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=120)


def cmd_push_image(registry, repo, tag, layer_digest, layer_size, from_repo):
    conn = registry_conn(registry)
    q = urllib.parse.urlencode({"mount": layer_digest, "from": from_repo})
    conn.request("POST", "/v2/%s/blobs/uploads/?%s" % (repo, q), body=b"", headers={"Content-Length": "0"})
    r = conn.getresponse()
    r.read()
    if r.status != 201:
        sys.exit("mounting %s from %s: %d" % (layer_digest, from_repo, r.status))
    config = jdump({"architecture": "amd64", "os": "linux", "config": {},
                    "rootfs": {"type": "layers", "diff_ids": [layer_digest]}})
    put_blob(conn, repo, config)
    m = put_manifest(conn, repo, tag, image_manifest(config, [(layer_digest, int(layer_size))]))
    print(m, sha(config), len(config))


def cmd_tiny_images(registry, repo, n, seed, out):
    conn = registry_conn(registry)
    with open(out, "w") as f:
        for i in range(int(n)):
            layer = random.Random("bench:%s:tiny:%d" % (seed, i)).randbytes(1024)
            config = jdump({"architecture": "amd64", "os": "linux", "config": {"Labels": {"i": str(i)}},
                            "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}})
            put_blob(conn, repo, layer)
            put_blob(conn, repo, config)
            tag = "t%03d" % i
            m = put_manifest(conn, repo, tag, image_manifest(config, [(sha(layer), len(layer))]))
            f.write("%s %s %s %s\n" % (tag, m, sha(config), sha(layer)))


def cmd_pull_images(base, listfile, threads):
    import concurrent.futures
    u = urllib.parse.urlsplit(base)
    images = [l.split() for l in open(listfile) if l.strip()]

    def get(conn, path, want, accept=None):
        conn.request("GET", u.path + path, headers={"Accept": accept} if accept else {})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or sha(body) != want:
            raise RuntimeError("GET %s%s: %d, %s (want %s)" % (base, path, r.status, sha(body), want))

    def pull(img):
        tag, m, cfg, layer = img
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        try:
            get(conn, "/manifests/" + tag, m, OCI_MANIFEST)
            get(conn, "/blobs/" + cfg, cfg)
            get(conn, "/blobs/" + layer, layer)
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(int(threads)) as ex:
        for f in [ex.submit(pull, i) for i in images]:
            try:
                f.result()
            except Exception as e:
                sys.exit(str(e))
    print("ok", len(images))


MANIFEST_PATH_RE = re.compile(r"^/v2/.+/manifests/[^/]+$")


def cmd_put_rate(path):
    ts = sorted(r["t"] for r in load_counts(path)["requests"]
                if r.get("listener") == "data" and r.get("method") == "PUT" and r.get("status") == 201
                and MANIFEST_PATH_RE.match(r.get("path", "")))
    best, j = 0, 0
    for i in range(len(ts)):
        while ts[i] - ts[j] >= 1.0:
            j += 1
        best = max(best, i - j + 1)
    span = ts[-1] - ts[0] if len(ts) > 1 else 0.0
    mean = (len(ts) - 1) / span if span > 0 else 0.0
    print("%d %d %.2f %.3f" % (len(ts), best, mean, span))


def cmd_ecr_uploads(path):
    c = load_counts(path)
    d = c.get("data", {})
    print(d.get("PUT upload", 0), d.get("PATCH upload", 0), d.get("POST upload", 0),
          c.get("uploads_completed", 0), c.get("bytes_uploaded", 0))


def cmd_up_bytes(path, images, repo):
    img = [x for x in json.load(open(images)) if x["repo"] == repo][0]
    sizes = img["blob_sizes"]
    total = gets = 0
    for r in load_counts(path)["requests"]:
        if r.get("kind") != "GET blob" or r.get("status") not in (200, 206):
            continue
        m = DIGEST_RE.search(r.get("path", ""))
        if not m or m.group(1) not in sizes:
            continue
        gets += 1
        n = sizes[m.group(1)]
        rng = re.match(r"bytes=(\d+)-(\d*)$", r.get("range") or "")
        if r.get("status") == 206 and rng:
            n = (int(rng.group(2)) + 1 if rng.group(2) else n) - int(rng.group(1))
        total += n
    print(total, gets, sum(sizes.values()))


# ---- ops figures (tests/bench/ops.sh) ----------------------------------------------------

def push_blob_once(conn, repo, data):
    """A monolithic upload in one request (POST ...?digest=, distribution answers 201), else
    POST then PUT."""
    digest = sha(data)
    conn.request("POST", "/v2/%s/blobs/uploads/?%s" % (repo, urllib.parse.urlencode({"digest": digest})),
                 body=data, headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    r.read()
    if r.status == 201:
        return digest
    if r.status != 202:
        sys.exit("POST monolithic upload: %d" % r.status)
    loc = urllib.parse.urlsplit(r.getheader("Location"))
    path = loc.path + "?" + (loc.query + "&" if loc.query else "") + urllib.parse.urlencode({"digest": digest})
    conn.request("PUT", path, body=data, headers={"Content-Type": "application/octet-stream"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 201:
        sys.exit("PUT blob: %d %s" % (r.status, body[:300]))
    return digest


def run_threads(n, threads, work):
    """work(i, conn_state) for i in range(n), split into THREADS contiguous slices, each
    thread with its own state (a keep-alive connection); the first exception ends it all."""
    import threading
    errs = []
    def slice_run(k):
        try:
            state = {}
            for i in range(k, n, threads):
                if errs:
                    return
                work(i, state)
        except BaseException as e:  # noqa: B902 - reported below
            errs.append(e)
    ts = [threading.Thread(target=slice_run, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errs:
        sys.exit("failed: %s" % errs[0])


def cmd_many_images(registry, repo, n, threads, out):
    """N distinct small images REPO:t1..tN: one shared 1 KiB layer, a unique config and
    manifest each. OUT: "<tag> <manifest> <config>" per image, and the layer's line
    "layer <digest> <size>" first."""
    n, threads = int(n), int(threads)
    layer = random.Random("bench:ops:layer").randbytes(1024)
    conn = registry_conn(registry)
    ld = push_blob_once(conn, repo, layer)
    conn.close()
    rows = [None] * n

    def work(i, st):
        if "c" not in st:
            st["c"] = registry_conn(registry)
        c = st["c"]
        config = jdump({"architecture": "amd64", "os": "linux", "config": {"Labels": {"ops": str(i + 1)}},
                        "rootfs": {"type": "layers", "diff_ids": [ld]}})
        push_blob_once(c, repo, config)
        tag = "t%d" % (i + 1)
        m = put_manifest(c, repo, tag, image_manifest(config, [(ld, len(layer))]))
        rows[i] = "%s %s %s" % (tag, m, sha(config))

    run_threads(n, threads, work)
    with open(out, "w") as f:
        f.write("layer %s %d\n" % (ld, len(layer)))
        for r in rows:
            f.write(r + "\n")


def cmd_many_tags(registry, repo, n, threads, prefix):
    """One small image under N tags REPO:PREFIX000000..; prints its manifest digest."""
    n, threads = int(n), int(threads)
    layer = random.Random("bench:ops:tags:" + repo).randbytes(1024)
    config = jdump({"architecture": "amd64", "os": "linux", "config": {"Labels": {"repo": repo}},
                    "rootfs": {"type": "layers", "diff_ids": [sha(layer)]}})
    conn = registry_conn(registry)
    push_blob_once(conn, repo, layer)
    push_blob_once(conn, repo, config)
    manifest = image_manifest(config, [(sha(layer), len(layer))])
    conn.close()

    def work(i, st):
        if "c" not in st:
            st["c"] = registry_conn(registry)
        put_manifest(st["c"], repo, "%s%06d" % (prefix, i), manifest)

    run_threads(n, threads, work)
    print(sha(manifest))


def cmd_pull_many(base, listfile, threads, what):
    """GETs through BASE_URL (".../v2/<repo path>") with THREADS keep-alive connections, every
    body checked against its digest. LIST lines "<tag> <manifest> [<config>]" (a "layer" line
    is skipped); WHAT "manifest" GETs the manifests by tag, "manifest+config" also the configs,
    "head" sends HEAD for the manifests (the digest header checked). Prints "ok N"."""
    u = urllib.parse.urlsplit(base)
    rows = [l.split() for l in open(listfile) if l.strip() and not l.startswith("layer ")]

    def req(st, method, path, want, accept=None):
        for attempt in (0, 1):  # one retry on a connection the server closed
            if "c" not in st:
                st["c"] = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            try:
                st["c"].request(method, u.path + path, headers={"Accept": accept} if accept else {})
                r = st["c"].getresponse()
                body = r.read()
                break
            except (http.client.HTTPException, ConnectionError):
                st.pop("c").close()
                if attempt:
                    raise
        got = r.getheader("Docker-Content-Digest") if method == "HEAD" else sha(body)
        if r.status != 200 or got != want:
            raise RuntimeError("%s %s%s: %d, %s (want %s)" % (method, base, path, r.status, got, want))

    def work(i, st):
        row = rows[i]
        if what == "head":
            req(st, "HEAD", "/manifests/" + row[0], row[1], OCI_MANIFEST)
            return
        req(st, "GET", "/manifests/" + row[0], row[1], OCI_MANIFEST)
        if what == "manifest+config":
            req(st, "GET", "/blobs/" + row[2], row[2])

    run_threads(len(rows), int(threads), work)
    print("ok", len(rows))


def cmd_wrk_ops(path):
    """wrk's output with tests/bench/ops.sh's Lua done(): "rps p50_ms p99_ms p999_ms max_ms
    requests non2xx socket_errors"."""
    text = open(path).read()
    m = re.search(r"^OPS (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) ([\d.]+)$", text, re.M)
    if not m:
        sys.exit("cannot parse wrk (ops) output in %s" % path)
    p50, p99, p999, mx, n, status, sock, _, secs = m.groups()
    n = int(n)
    print("%.1f %.3f %.3f %.3f %.3f %d %d %d" % (n / float(secs) if float(secs) else 0.0, int(p50) / 1000.0,
                                                 int(p99) / 1000.0, int(p999) / 1000.0, int(mx) / 1000.0,
                                                 n, int(status), int(sock)))


def cmd_json_count(path, key):
    """len() of a JSON array (KEY "-": the document itself) or the integer at KEY."""
    doc = json.load(open(path))
    v = doc if key == "-" else doc[key]
    print(len(v) if isinstance(v, list) else v)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "fetches" and len(args) >= 1:
        return cmd_fetches(args[0], args[1:])
    if cmd == "upstream-total" and len(args) == 1:
        return cmd_upstream_total(args[0])
    if cmd == "wrk" and len(args) == 1:
        return cmd_wrk(args[0])
    if cmd == "hey" and len(args) == 1:
        return cmd_hey(args[0])
    if cmd == "ab" and len(args) == 1:
        return cmd_ab(args[0])
    if cmd == "sample" and len(args) == 4:
        return cmd_sample(*args)
    if cmd == "push-blob" and len(args) == 4:
        return cmd_push_blob(*args)
    if cmd == "push-image" and len(args) == 6:
        return cmd_push_image(*args)
    if cmd == "tiny-images" and len(args) == 5:
        return cmd_tiny_images(*args)
    if cmd == "pull-images" and len(args) == 3:
        return cmd_pull_images(*args)
    if cmd == "put-rate" and len(args) == 1:
        return cmd_put_rate(args[0])
    if cmd == "ecr-uploads" and len(args) == 1:
        return cmd_ecr_uploads(args[0])
    if cmd == "up-bytes" and len(args) == 3:
        return cmd_up_bytes(*args)
    if cmd == "many-images" and len(args) == 5:
        return cmd_many_images(*args)
    if cmd == "many-tags" and len(args) == 5:
        return cmd_many_tags(*args)
    if cmd == "pull-many" and len(args) == 4:
        return cmd_pull_many(*args)
    if cmd == "wrk-ops" and len(args) == 1:
        return cmd_wrk_ops(args[0])
    if cmd == "json-count" and len(args) == 2:
        return cmd_json_count(*args)
    if cmd == "markdown" and len(args) == 1:
        return cmd_markdown(args[0])
    if cmd == "report" and len(args) == 3:
        return cmd_report(*args)
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
