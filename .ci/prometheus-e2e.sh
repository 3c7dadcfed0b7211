#!/usr/bin/env bash
# End-to-end test of leadrouterd's Prometheus metrics and of the operator
# assets in deploy/, against a real Prometheus:
#
#   1. builds leadrouterd and leadctl, starts leadrouterd on the embedded
#      store with examples/routing.yaml, on free loopback ports;
#   2. starts Prometheus (Debian's package) on a free loopback port, scraping
#      that leadrouterd every second and loading
#      deploy/prometheus/rules/leadrouter.rules.yml;
#   3. assigns leads over gRPC with leadctl (offers accepted and rejected,
#      first contacts recorded, duplicates; an events stream and a rep's
#      stream open), in two batches, so that the series leadrouterd creates
#      at their first observation have a sample before the second batch;
#   4. lints the /metrics page with `promtool check metrics` (any problem
#      fails) and runs deploy/check.sh with it, so the names the rules and
#      the dashboard query are checked against what leadrouterd serves;
#   5. waits until Prometheus has scraped every call, then asserts through
#      the HTTP API that the AssignLead p99 is a finite number, that the
#      target is up, that every rule evaluates without error, and that every
#      dashboard query is accepted (printing which have data).
#
# Usage: .ci/prometheus-e2e.sh      (from anywhere; about half a minute)
# Needs go, curl, python3, and promtool and prometheus (Debian package
# prometheus); installs nothing. Uses only loopback ports it picked, never
# :9090, and stops everything it started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "prometheus-e2e: $*"; }
for tool in go curl python3 promtool prometheus; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "prometheus-e2e: $tool not found (promtool, prometheus: apt-get install --no-install-recommends prometheus)" >&2
		exit 1
	}
done
# The LEADROUTER_* variables set leadrouterd's and leadctl's flag defaults:
# this test sets every flag it needs and must not pick up a developer's Redis
# or address.
while read -r v; do [ -n "$v" ] && unset "$v"; done < <(compgen -e | grep '^LEADROUTER_' || true)

tmp=$(mktemp -d)
pids=()  # every process started, stopped on exit
names=() # and its name, for messages
cleanup() {
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		for f in leadrouterd.log prometheus.log events.log watch.log; do
			[ -s "$tmp/$f" ] || continue
			echo "--- last lines of $f" >&2
			tail -n 40 "$tmp/$f" >&2
		done
	fi
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		# Give each up to 10 s to exit, then kill it.
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
	echo "prometheus-e2e: FAIL: $*" >&2
	exit 1
}

# wait_for SECONDS DESCRIPTION COMMAND...: runs COMMAND every 0.2 s until it
# succeeds; after SECONDS fails with the last attempt's output.
wait_for() {
	local secs=$1 what=$2
	shift 2
	local deadline=$((SECONDS + secs))
	until "$@" >"$tmp/wait.out" 2>&1; do
		all_alive
		[ "$SECONDS" -lt "$deadline" ] ||
			fail "timed out after ${secs}s waiting for $what; last attempt said: $(tail -c 600 "$tmp/wait.out")"
		sleep 0.2
	done
}

# started NAME: records the last background process, $!.
started() {
	pids+=("$!")
	names+=("$1")
}
# all_alive: fails when a process started here has exited.
all_alive() {
	local i
	for i in "${!pids[@]}"; do
		kill -0 "${pids[$i]}" 2>/dev/null || fail "${names[$i]} exited early (its log, if any, is below)"
	done
}

# Free loopback ports: bound all at once so they differ, then released.
read -r grpc_port metrics_port prom_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
')
grpc_addr=127.0.0.1:$grpc_port
metrics_url=http://127.0.0.1:$metrics_port/metrics
prom_url=http://127.0.0.1:$prom_port

log "building leadrouterd and leadctl"
go build -o "$tmp/leadrouterd" ./cmd/leadrouterd
go build -o "$tmp/leadctl" ./cmd/leadctl

# Plaintext gRPC needs --insecure once leadrouterd has that flag. The help
# text is captured first: `leadrouterd -h` exits non-zero, which would fail a
# pipeline under pipefail.
help=$("$tmp/leadrouterd" -h 2>&1 || true)
insecure=()
if grep -q -- '-insecure' <<<"$help"; then
	insecure=(--insecure)
fi

# The HTTP edge's default port may be taken on a CI machine: off here.
nohttp=()
if grep -q -- '-http-listen' <<<"$help"; then
	nohttp=(--http-listen "")
fi

log "starting leadrouterd: gRPC $grpc_addr, metrics $metrics_url ${insecure[*]}"
"$tmp/leadrouterd" --listen "$grpc_addr" --metrics-listen "127.0.0.1:$metrics_port" \
	--config examples/routing.yaml "${insecure[@]}" "${nohttp[@]}" >"$tmp/leadrouterd.log" 2>&1 &
started leadrouterd
wait_for 30 "leadrouterd's $metrics_url" curl -sf --max-time 2 -o /dev/null "$metrics_url"
leadctl() { "$tmp/leadctl" --addr "$grpc_addr" --timeout 5s "$@"; }
wait_for 30 "leadrouterd's gRPC on $grpc_addr" leadctl reps list

cat >"$tmp/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $PWD/deploy/prometheus/rules/leadrouter.rules.yml
scrape_configs:
  - job_name: leadrouter
    static_configs:
      - targets: ['127.0.0.1:$metrics_port']
EOF
log "starting prometheus on $prom_url"
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prometheus-data" \
	--web.listen-address="127.0.0.1:$prom_port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
started prometheus
wait_for 60 "prometheus to be ready on $prom_url" curl -sf --max-time 2 -o /dev/null "$prom_url/-/ready"

# query EXPR: prints the JSON answer of an instant query (fails on an error).
query() {
	curl -sf --max-time 10 -G --data-urlencode "query=$1" "$prom_url/api/v1/query" ||
		fail "prometheus query failed: $1"
}
# scalar: reads a query answer; prints its one sample's value when it is a
# finite number, else fails (exit 1) saying what it got.
scalar() {
	python3 -c '
import json, math, sys
r = json.load(sys.stdin)
res = r.get("data", {}).get("result", [])
if r.get("status") != "success" or len(res) != 1:
    sys.exit("want one sample, got %s with %d samples: %s" % (r.get("status"), len(res), json.dumps(r)[:300]))
v = float(res[0]["value"][1])
if not math.isfinite(v):
    sys.exit(f"value is {v}, not a finite number")
print(res[0]["value"][1])
'
}
scraped_ok() { query 'up{job="leadrouter"} == 1' | scalar; }
wait_for 30 "prometheus's first scrape of $metrics_url" scraped_ok

# Leads that route to different pools of examples/routing.yaml: the DACH and
# EMEA pools and na-west offer each lead (accept or reject), inbound assigns
# at once; large US companies go to na-enterprise, whose reps keep office
# hours (queued outside them).
lead_args() { # lead_args N: flags of the N-th lead
	local n=$1 ago=$(($1 % 9))
	local at
	at=$(date -u -d "-$ago minutes" +%Y-%m-%dT%H:%M:%SZ)
	case $((n % 5)) in
	0) echo "--id e2e-$n --email lead$n@beispiel.de --country DE --language de --submitted-at $at" ;;
	1) echo "--id e2e-$n --email lead$n@exemple.fr --country FR --submitted-at $at" ;;
	2) echo "--id e2e-$n --email lead$n@example.com --country US --region CA --submitted-at $at" ;;
	3) echo "--id e2e-$n --email lead$n@example.com.br --country BR --source demo_request --score 80 --submitted-at $at" ;;
	4) echo "--id e2e-$n --email lead$n@bigcorp.com --country US --employees 5000 --submitted-at $at" ;;
	esac
}
# A dashboard and a rep desktop listening: streams and event delivery.
"$tmp/leadctl" --addr "$grpc_addr" events >"$tmp/events.log" 2>&1 &
started "leadctl events"
"$tmp/leadctl" --addr "$grpc_addr" watch --rep felix >"$tmp/watch.log" 2>&1 &
started "leadctl watch"

assigned=0
# First batch: every lead's answer is read, and its rep acts on it: accepts
# (or, one in four, rejects) an offer, records the first contact.
for n in $(seq 1 40); do
	# shellcheck disable=SC2046 # lead_args prints separate flags
	out=$(leadctl --json assign $(lead_args "$n")) || fail "leadctl assign of lead $n failed"
	assigned=$((assigned + 1))
	read -r state rep < <(python3 -c '
import json, sys
a = json.load(sys.stdin).get("assignment", {})
print(a.get("state", "").replace("ASSIGNMENT_STATE_", ""), a.get("repId", "-"))' <<<"$out")
	case $state in
	OFFERED)
		if [ $((n % 4)) -eq 0 ]; then
			leadctl reject "e2e-$n" --rep "$rep" --reason busy >/dev/null || fail "reject e2e-$n by $rep failed"
			continue
		fi
		leadctl accept "e2e-$n" --rep "$rep" >/dev/null || fail "accept e2e-$n by $rep failed"
		leadctl contact "e2e-$n" --rep "$rep" --channel call >/dev/null || fail "contact e2e-$n by $rep failed"
		;;
	ASSIGNED)
		leadctl contact "e2e-$n" --rep "$rep" --channel email >/dev/null || fail "contact e2e-$n by $rep failed"
		;;
	esac
done
log "assigned $assigned leads (offers accepted and rejected, first contacts recorded)"
curl -sf --max-time 10 -o "$tmp/metrics-1.txt" "$metrics_url" || fail "cannot read $metrics_url"
grep -q '^leadrouter_assign_duration_seconds_count' "$tmp/metrics-1.txt" ||
	fail "$metrics_url has no leadrouter_assign_duration_seconds histogram after $assigned AssignLead calls (metric families: $(grep '^# TYPE' "$tmp/metrics-1.txt" | awk '{print $3}' | sed 's/_.*//' | sort -u | tr '\n' ' '))"
# scraped N: Prometheus has scraped at least N AssignLead calls.
scraped() {
	local v
	v=$(query 'sum(leadrouter_assign_duration_seconds_count{job="leadrouter"})' | scalar) || return 1
	python3 -c "import sys; sys.exit(0 if float('$v') >= $1 else 'scraped $v of $1 calls')"
}
# Prometheus sees the first batch before the second one.
wait_for 30 "prometheus to scrape the first $assigned AssignLead calls" scraped "$assigned"
for n in $(seq 41 200); do
	# shellcheck disable=SC2046
	leadctl assign $(lead_args "$n") >/dev/null || fail "leadctl assign of lead $n failed"
	assigned=$((assigned + 1))
done
for n in $(seq 1 10); do # the same lead ids again: outcome duplicate
	# shellcheck disable=SC2046
	leadctl assign $(lead_args "$n") >/dev/null || fail "leadctl assign of duplicate lead $n failed"
	assigned=$((assigned + 1))
done
log "assigned $assigned leads in all, 10 of them duplicates"
all_alive

curl -sf --max-time 10 -o "$tmp/metrics.txt" "$metrics_url" || fail "cannot read $metrics_url"
log "/metrics: $(grep -vc '^#' "$tmp/metrics.txt") samples, $(grep -c '^# TYPE leadrouter_' "$tmp/metrics.txt" || true) leadrouter_* metrics"

log "promtool check metrics on $metrics_url"
if ! promtool check metrics <"$tmp/metrics.txt" >"$tmp/lint.txt" 2>&1 || [ -s "$tmp/lint.txt" ]; then
	cat "$tmp/lint.txt" >&2
	fail "promtool check metrics reported problems in $metrics_url (above)"
fi

log "deploy/check.sh with this /metrics page"
bash deploy/check.sh "$tmp/metrics.txt" || fail "deploy/check.sh failed (above)"

# Every AssignLead call scraped: a rate over the last minute covers both
# batches.
wait_for 30 "prometheus to scrape all $assigned AssignLead calls" scraped "$assigned"

p99_query='histogram_quantile(0.99, sum(rate(leadrouter_assign_duration_seconds_bucket[1m])) by (le))'
p99_ok() { query "$p99_query" | scalar >"$tmp/p99"; }
wait_for 20 "a finite AssignLead p99 from prometheus" p99_ok
p99=$(cat "$tmp/p99")
log "$p99_query = ${p99}s ($(python3 -c "print(f'{$p99 * 1000:.3f}')") ms): finite"

targets_ok() {
	curl -sf --max-time 10 "$prom_url/api/v1/targets" | python3 -c '
import json, sys
ts = json.load(sys.stdin)["data"]["activeTargets"]
sys.exit(0 if ts and all(t["health"] == "up" for t in ts) else 1)'
}
targets_ok || fail "a prometheus target is not up: $(curl -sf --max-time 10 "$prom_url/api/v1/targets")"
log "target 127.0.0.1:$metrics_port is up"

# The rules evaluate every second; each must have run at least once without
# error ("unknown" before its first evaluation).
rules_ok() {
	curl -sf --max-time 10 "$prom_url/api/v1/rules" | python3 -c '
import json, sys
groups = json.load(sys.stdin)["data"]["groups"]
rules = [r for g in groups for r in g["rules"]]
bad = ["%s: %s %s" % (r["name"], r["health"], r.get("lastError", "")) for r in rules if r["health"] != "ok"]
if not rules or bad:
    sys.exit("rules not ok: " + ("; ".join(bad) or "none loaded"))
print(len(rules), "rules in", len(groups), "groups")' >"$tmp/rules.txt"
}
wait_for 20 "every rule of deploy/prometheus/rules/leadrouter.rules.yml to evaluate without error" rules_ok
log "rules loaded and evaluating without error: $(cat "$tmp/rules.txt")"
rec_p99=$(query 'leadrouter:assign_duration_seconds:p99_5m' | scalar) ||
	fail "recording rule leadrouter:assign_duration_seconds:p99_5m has no finite value"
log "recording rule leadrouter:assign_duration_seconds:p99_5m = ${rec_p99}s"

# Each dashboard query, Grafana's variables set as for "All" (job
# leadrouter), must be accepted; the ones without data are listed (SLA
# breaches, Redis errors, ... need time or failures this test does not make).
python3 - "$prom_url" deploy/grafana/leadrouter-dashboard.json <<'PY' || fail "a dashboard query failed (above)"
import json, re, sys, urllib.parse, urllib.request

prom, path = sys.argv[1:3]
dash = json.load(open(path, encoding="utf-8"))
values = {"job": "leadrouter", "__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
panels = [p for top in dash["panels"] for p in [top] + top.get("panels", [])]
with_data, empty = [], []
for p in panels:
    for t in p.get("targets", []):
        expr = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: values.get(m.group(1) or m.group(2), ".*"), t["expr"])
        url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            r = json.load(urllib.request.urlopen(url, timeout=10))
        except Exception as e:
            body = e.read().decode() if hasattr(e, "read") else ""
            sys.exit(f"panel {p['title']!r}: {expr}: {e} {body}")
        name = f"{p['title']} ({t['refId']})"
        res = [s for s in r["data"]["result"] if s["value"][1] not in ("NaN", "+Inf", "-Inf")]
        (with_data if res else empty).append(name)
print(f"prometheus-e2e: dashboard: {len(with_data) + len(empty)} queries accepted, {len(with_data)} with data")
if empty:
    print("  no data yet: " + ", ".join(empty))
PY

log "OK: leadrouterd's /metrics lints clean, matches the spec list, and Prometheus computes AssignLead p99 = ${p99}s from it"
