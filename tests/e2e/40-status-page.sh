#!/usr/bin/env bash
# The status page (GET /) in headless Chromium (Debian's chromium): after skopeo pulled one
# image twice through the proxy (misses, then hits) and two rules' upstreams answered a 404
# with ratelimit-remaining and a 429, the rendered page has every section, each figure tagged
# with a /metrics series equals /metrics' value, the egress avoided and fills in flight follow
# from them, the upstreams show their health and rate-limit headroom, the chart is an inline
# SVG, disk used matches the store's files against cache_size, nothing on the page is a script
# or an external URL, and HEAD / has no body. A screenshot is saved beside the test's log. Chromium only ever gets 127.0.0.1 URLs, and its
# background traffic is switched off.
source "$TOP_SRCDIR/tests/e2e/lib.sh"
source "$TOP_SRCDIR/tests/e2e/lib_registry.sh"

CHROMIUM=${E2E_CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$CHROMIUM" ]; then
    echo "SKIP: no $CHROMIUM (deploy/debian-setup.sh installs it)"
    exit 77
fi

start_registry reg
seed_images "$REGISTRY_URL" "$E2E_TMP/images.json" --set small >/dev/null
start_fake_upstream fake "$REGISTRY_URL" --auth none

port=$(free_port)
cat >"$E2E_TMP/config.json" <<JSON
{"listen": "127.0.0.1:$port", "data_dir": "$E2E_TMP/data", "cache_size": "1MiB",
 "egress_price_per_gb": 0.09,
 "rules": [{"prefix": "hub", "upstream": "$FAKE_URL", "mirror_for": ["docker.io"],
            "library_prefix": true, "default": true, "allow_private_redirects": true},
           {"prefix": "throttled", "upstream": "$FAKE_URL", "allow_private_redirects": true},
           {"prefix": "idle", "upstream": "http://127.0.0.1:9", "allow_private_redirects": true}]}
JSON
start_proxy proxy --config "$E2E_TMP/config.json"
wait_port "$port"
P="127.0.0.1:$port"
U="http://$P"

read -r repo tag < <(python3 -c '
import json, sys
i = json.load(open(sys.argv[1]))[0]
print(i["repo"], i["tag"])' "$E2E_TMP/images.json")
copy() { # copy DEST: skopeo copy --all of the first image through the proxy
    skopeo copy -q --all --src-tls-verify=false "docker://$P/hub/$repo:$tag" "dir:$1" \
        >"$E2E_TMP/skopeo.out" 2>&1
}
check "cold skopeo copy hub/$repo:$tag" copy "$E2E_TMP/cold"
check "warm skopeo copy hub/$repo:$tag" copy "$E2E_TMP/warm"

# hub's upstream answers a 404 with rate-limit headroom; throttled's a 429 (ratelimit 0).
fake_ctl faults '[{"match":"^(GET|HEAD) /v2/library/nothere/manifests/","kind":"status","status":404,"count":-1,"headers":{"ratelimit-remaining":"97;w=21600"}},
                  {"match":"^(GET|HEAD) /v2/thr/img/manifests/","kind":"status","status":429,"count":-1}]' >/dev/null
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' "$U/v2/hub/library/nothere/manifests/latest")
check "hub: a 404 from upstream ($code)" test "$code" = 404
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' "$U/v2/throttled/thr/img/manifests/latest")
check "throttled: a 429 from upstream ($code)" test "$code" = 429
fake_ctl faults '[]' >/dev/null

# The raw page and its headers.
curl -s -m 10 -D "$E2E_TMP/page.h" -o "$E2E_TMP/page.html" "$U/"
check "GET / answers 200" grep -q '^HTTP/1.1 200' "$E2E_TMP/page.h"
check "... as text/html; charset=utf-8" grep -qi '^Content-Type: text/html; charset=utf-8' "$E2E_TMP/page.h"
check "... with Cache-Control: no-store" grep -qi '^Cache-Control: no-store' "$E2E_TMP/page.h"
check "... and a CSP that allows no script" grep -qi "^Content-Security-Policy: default-src 'none'" "$E2E_TMP/page.h"
check "the page has no <script" bash -c "! grep -qi '<script' '$E2E_TMP/page.html'"
check "the page names no external URL (src=/href= http)" \
    bash -c "! grep -qiE '(src|href)=\"?(https?:)?//' '$E2E_TMP/page.html'"
# HEAD: the headers and not one byte of body (read raw: a client would not read a body).
python3 - "$port" >"$E2E_TMP/head.out" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
data, end = b"", time.time() + 5
while time.time() < end:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), len(body))
PY
check "HEAD / answers 200 with no body ($(cat "$E2E_TMP/head.out"))" \
    grep -qx 'HTTP/1.1 200 OK 0' "$E2E_TMP/head.out"
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X POST "$U/")
check "POST / is refused ($code)" test "$code" = 405

# Chromium: the DOM as rendered, and a screenshot. Its own process group, stopped by its PID.
chrome() { # chrome NAME ARGS...: runs chromium headless on the page, at most 90 s
    local name=$1 pid i
    shift
    mkdir -p "$E2E_TMP/home"
    HOME="$E2E_TMP/home" XDG_CONFIG_HOME="$E2E_TMP/home" XDG_CACHE_HOME="$E2E_TMP/home" \
        setsid "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --no-first-run --no-default-browser-check --disable-background-networking \
        --disable-component-update --disable-sync --disable-extensions \
        --user-data-dir="$E2E_TMP/chrome" "$@" "$U/" \
        >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.log" </dev/null &
    pid=$!
    E2E_PIDS+=("$pid")
    for i in $(seq 1 900); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "chromium $name still running after 90 s: stopping it" >&2
        kill -TERM -- "-$pid" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        return 1
    fi
    wait "$pid"
}
# Pulls reach the index in the catalog's batches (every 5 s): wait for them, at most 15 s.
listed() { curl -s -m 5 "$U/" | grep -qF "data-image=\"hub/$repo:$tag\""; }
for _ in $(seq 1 150); do listed && break; sleep 0.1; done
check "the pulls reached the index: the page lists hub/$repo:$tag" listed
curl -s -m 10 -o "$E2E_TMP/metrics.txt" "$U/metrics"
stored=$(find "$E2E_TMP/data/blobs" -type f -printf '%s\n' | awk '{ t += $1 } END { print t + 0 }')
check "chromium --dump-dom renders the page" chrome dom --dump-dom
tail -n 5 "$E2E_TMP/dom.log" >&2 || true

# Every data-metric element against /metrics, and the page's own figures.
rc=0
python3 - "$E2E_TMP/dom.out" "$E2E_TMP/metrics.txt" "hub/$repo:$tag" "$stored" <<'PY' >"$E2E_TMP/cmp.out" 2>&1 || rc=$?
import html.parser, re, sys
dom, metrics, image = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
stored = int(sys.argv[4])
series = {}
for line in metrics.splitlines():
    m = re.match(r'^([a-z_]+(?:\{[^}]*\})?) (\d+)$', line)
    if m:
        series[m.group(1)] = int(m.group(2))
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.els, self.tags, self.title, self.intitle = [], {}, "", False
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.els.append((tag, a))
        self.intitle = tag == "title"
    def handle_endtag(self, tag):
        self.intitle = False
    def handle_data(self, d):
        if self.intitle:
            self.title += d
p = P()
p.feed(dom)
bad = 0
def ok(what, cond):
    global bad
    print(("ok   " if cond else "FAIL ") + what)
    bad += 0 if cond else 1
def by_id(i):
    return next((a for t, a in p.els if a.get("id") == i), None)
ok("title is 'ecr-ptc-proxy status' (%r)" % p.title, p.title == "ecr-ptc-proxy status")
for sec in ("traffic", "egress", "fills", "disk", "upstreams", "top-images", "chart"):
    ok("section #%s present" % sec, any(t == "section" and a.get("id") == sec for t, a in p.els))
n = 0
for t, a in p.els:
    if "data-metric" in a:
        n += 1
        name, v = a["data-metric"], int(a["data-value"])
        ok("%s: page %d, /metrics %s" % (name, v, series.get(name)), series.get(name) == v)
ok("at least 15 figures compared (%d)" % n, n >= 15)
g = lambda k: series.get(k, -1)
hits = g('ecr_ptc_cache_hits_total{kind="manifest"}') + g('ecr_ptc_cache_hits_total{kind="blob"}')
miss = g('ecr_ptc_cache_misses_total{kind="manifest"}') + g('ecr_ptc_cache_misses_total{kind="blob"}')
store = g('ecr_ptc_bytes_served_total{from="store"}')
ok("the pulls made hits (%d), misses (%d), store bytes (%d), upstream bytes (%d)" %
   (hits, miss, store, g("ecr_ptc_upstream_bytes_total")),
   hits > 0 and miss > 0 and store > 0 and g("ecr_ptc_upstream_bytes_total") > 0)
hr = by_id("hit-ratio")
ok("hit ratio from hits %s of %s asked" % (hr.get("data-hits"), hr.get("data-asked")),
   int(hr["data-hits"]) == hits and int(hr["data-asked"]) == hits + miss)
eg = by_id("egress-avoided")
ok("egress avoided = store bytes (%s)" % eg.get("data-value"), int(eg["data-value"]) == store)
ok("... at egress_price_per_gb's $0.09 (%s)" % eg.get("data-price"), float(eg["data-price"]) == 0.09)
ok("... in dollars %s" % eg.get("data-dollars"), abs(float(eg["data-dollars"]) - store / 1e9 * 0.09) < 1e-6)
inflight = by_id("fills-in-flight")
started = g('ecr_ptc_fills_total{state="started"}')
ended = (g('ecr_ptc_fills_total{state="completed"}') + g('ecr_ptc_fills_total{state="failed"}')
         + g('ecr_ptc_fills_total{state="not_kept"}'))
ok("fills in flight = started - completed - failed - not kept (%s)" % inflight["data-value"],
   int(inflight["data-value"]) == started - ended)
ok("disk: free bytes shown (%s)" % by_id("disk-free").get("data-value"), int(by_id("disk-free")["data-value"]) > 0)
ok("disk: the budget is cache_size (%s)" % by_id("disk-budget").get("data-value"), by_id("disk-budget")["data-value"] == "1048576")
ok("disk: used is what the store holds (page %s, files %d)" % (by_id("disk-used").get("data-value"), stored),
   stored > 0 and int(by_id("disk-used")["data-value"]) == stored)
rules = {a["data-rule"] for t, a in p.els if t == "tr" and "data-rule" in a}
ok("one upstream row per rule (%s)" % sorted(rules), rules == {"hub", "throttled", "idle"})
ok("hub is up, with 97 requests left", g('ecr_ptc_upstream_up{rule="hub"}') == 1 and
   g('ecr_ptc_upstream_ratelimit_remaining{rule="hub"}') == 97)
ok("throttled is down, with 0 left", g('ecr_ptc_upstream_up{rule="throttled"}') == 0 and
   g('ecr_ptc_upstream_ratelimit_remaining{rule="throttled"}') == 0)
ok("idle was never asked: no series", 'ecr_ptc_upstream_up{rule="idle"}' not in series)
ok("the page shows throttled's 429 and its raw ratelimit-remaining",
   re.search(r'data-rule="throttled".*?answered 429.*?0;w=21600', dom, re.S) is not None)
ok("the page shows hub's 97;w=21600", re.search(r'data-rule="hub".*?97;w=21600', dom, re.S) is not None)
ok("hub's row says ok, idle's unknown",
   re.search(r'data-rule="hub".*?>ok<', dom, re.S) is not None and
   re.search(r'data-rule="idle".*?>unknown<', dom, re.S) is not None)
imgs = [a for t, a in p.els if t == "tr" and "data-image" in a]
ok("the top images name %s (%s)" % (image, [(a["data-image"], a["data-pulls"]) for a in imgs]),
   any(a["data-image"] == image and int(a["data-pulls"]) >= 1 for a in imgs))
ok("the chart is an inline svg with two polylines",
   p.tags.get("svg", 0) == 1 and p.tags.get("polyline", 0) == 2)
ok("no script element in the DOM", p.tags.get("script", 0) == 0)
ok("no element loads anything from elsewhere",
   not any(re.match(r'(https?:)?//', a.get("src", "") + a.get("href", "")) for t, a in p.els))
sys.exit(1 if bad else 0)
PY
cat "$E2E_TMP/cmp.out"
check "the rendered page matches /metrics ($(grep -c '^ok' "$E2E_TMP/cmp.out") checks passed, $(grep -c '^FAIL' "$E2E_TMP/cmp.out") failed)" test "$rc" = 0

shot="${TOP_BUILDDIR:-$E2E_TMP}/tests/e2e/40-status-page.png"
mkdir -p "$(dirname "$shot")"
rm -f "$shot"
check "chromium takes a screenshot" chrome shot --screenshot="$shot" --window-size=1280,1600
check "the screenshot is a PNG ($(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' '))" \
    test "$(head -c 8 "$shot" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a
size=$(stat -c %s "$shot" 2>/dev/null || echo 0)
check "... of a plausible size ($size bytes)" test "$size" -gt 20000 -a "$size" -lt 10000000
echo "screenshot: $shot"

check "the proxy stops cleanly" stop_pid "$PROXY_PID" 10
e2e_done
