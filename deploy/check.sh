#!/usr/bin/env bash
# Checks the operator assets in deploy/:
#   - prometheus/prometheus.yml           promtool check config
#   - prometheus/rules/leadrouter.rules.yml
#                                         promtool check rules, and every alert
#                                         has a severity label and summary and
#                                         description annotations
#   - prometheus/rules/leadrouter.rules_test.yml
#                                         promtool test rules, and every alert
#                                         has a case that fires and one that
#                                         does not
#   - grafana/leadrouter-dashboard.json   valid JSON, a templated data source,
#                                         unique panel ids, no overlapping
#                                         panels, every query valid PromQL
# and that every metric the rules and the dashboard query is one leadrouterd
# serves (the list below, as in docs/operations.md), with its own labels and
# label values.
#
# Usage: deploy/check.sh [METRICS_DUMP]
#
# METRICS_DUMP is the text of a leadrouterd /metrics page
# (curl -s 127.0.0.1:9464/metrics > dump.txt). With it, the list below is
# also checked against what leadrouterd really serves: a leadrouter_* metric,
# type, label or label value in the dump that the list lacks fails the check
# (update the list, then the rules and the dashboard). Queried metrics the
# dump lacks are only listed: leadrouterd's series appear at their first
# observation. .ci/prometheus-e2e.sh passes the /metrics of a leadrouterd it
# has sent leads to.
#
# Needs promtool (Debian package prometheus) and python3; installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PROM_CONFIG=deploy/prometheus/prometheus.yml
RULES=deploy/prometheus/rules/leadrouter.rules.yml
RULES_TEST=deploy/prometheus/rules/leadrouter.rules_test.yml
DASHBOARD=deploy/grafana/leadrouter-dashboard.json

for tool in promtool python3; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "check.sh: $tool not found (promtool: apt-get install --no-install-recommends prometheus)" >&2
		exit 1
	}
done
dump=${1:-}
if [ -n "$dump" ] && [ ! -r "$dump" ]; then
	echo "check.sh: cannot read metrics dump $dump" >&2
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "check: promtool check config $PROM_CONFIG"
promtool check config "$PROM_CONFIG"
echo "check: promtool check rules $RULES"
promtool check rules "$RULES" | tee "$tmp/rules.out"
# "SUCCESS: 12 rules found": the parser below must find as many.
rule_count=$(sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p' "$tmp/rules.out" | head -n1)
echo "check: promtool test rules $RULES_TEST"
promtool test rules "$RULES_TEST"
echo "check: python3 -m json.tool $DASHBOARD"
python3 -m json.tool "$DASHBOARD" >/dev/null

# The Python part reads the rules (a small YAML subset: the layout of
# leadrouter.rules.yml) and the dashboard, checks names, labels and structure,
# and writes every dashboard query, Grafana variables replaced, as a rules
# file for promtool to parse.
echo "check: metric names, labels, alerts' labels, annotations and tests, dashboard structure"
python3 - "$RULES" "$RULES_TEST" "$DASHBOARD" "$tmp/dashboard-queries.yml" "$rule_count" "$dump" <<'PY'
import json
import re
import sys

rules_path, tests_path, dash_path, queries_out, rule_count, dump_path = sys.argv[1:7]

# leadrouterd's metrics: name -> (type, {label: allowed values or None for any}).
# Every leadrouter_* series may also carry `workspace`
# (--metrics-workspace-label). Keep in step with docs/operations.md.
SPEC = {
    "leadrouter_assign_duration_seconds": ("histogram", {}),
    "leadrouter_assignments_total": ("counter", {"pool": None, "outcome": {"assigned", "queued", "unroutable", "duplicate"}}),
    "leadrouter_offer_accept_seconds": ("histogram", {}),
    "leadrouter_offers_total": ("counter", {"pool": None, "result": {"accepted", "rejected", "timed_out"}}),
    "leadrouter_speed_to_lead_seconds": ("histogram", {}),
    "leadrouter_sla_breaches_total": ("counter", {"pool": None, "kind": {"first_contact", "accept"}}),
    "leadrouter_queued_leads": ("gauge", {"pool": None}),
    "leadrouter_queued_oldest_seconds": ("gauge", {"pool": None}),
    "leadrouter_queue_wait_seconds": ("histogram", {}),
    "leadrouter_reps": ("gauge", {"status": {"AVAILABLE", "AWAY", "OFFLINE"}}),
    "leadrouter_stored_leads": ("gauge", {"state": {"OFFERED", "ASSIGNED", "QUEUED", "UNROUTABLE", "CLOSED"}}),
    "leadrouter_rep_auto_paused_total": ("counter", {"pool": None}),
    "leadrouter_records_removed_total": ("counter", {}),
    "leadrouter_quota_refused_total": ("counter", {}),
    "leadrouter_store_regressions_total": ("counter", {}),
    "leadrouter_redis_used_memory_bytes": ("gauge", {}),
    "leadrouter_redis_maxmemory_bytes": ("gauge", {}),
    "leadrouter_stream_subscribers": ("gauge", {"stream": {"assignments", "events"}}),
    "leadrouter_event_delivery_seconds": ("histogram", {}),
    "leadrouter_redis_errors_total": ("counter", {"op": None}),
    "leadrouter_redis_timeouts_total": ("counter", {"op": None}),
    "leadrouter_handler_panics_total": ("counter", {}),
    "leadrouter_clock_offset_seconds": ("gauge", {}),
    "leadrouter_redis_unreachable_masters": ("gauge", {}),
    "leadrouter_sweep_duration_seconds": ("histogram", {}),
    "leadrouter_timers_fired_total": ("counter", {"kind": {"offer", "sla", "warn", "escalate", "expire", "retain"}}),
    "leadrouter_timers_failed_total": ("counter", {"kind": {"offer", "sla", "warn", "escalate", "expire", "retain"}, "result": {"retry", "parked"}}),
    "leadrouter_timer_lateness_seconds": ("histogram", {"kind": {"offer", "sla", "warn", "escalate", "expire", "retain"}}),
    "leadrouter_state_scrape_errors": ("gauge", {}),
    "leadrouter_sink_deliveries_total": ("counter", {"sink": None, "result": {"delivered", "retry", "dead", "skipped"}}),
    "leadrouter_sink_delivery_seconds": ("histogram", {"sink": None}),
    "leadrouter_sink_lag_seconds": ("gauge", {"sink": None}),
    "leadrouter_sink_dead_letters": ("gauge", {"sink": None}),
    "leadrouter_sink_lost_total": ("counter", {"sink": None}),
}
TARGET_LABELS = {"job", "instance"}     # added by Prometheus to every scraped series
OTHER_PREFIXES = ("grpc_server_", "go_", "process_")  # served too; not listed here
PROMETHEUS_SERIES = {"up": {}}           # written by Prometheus for each target

errors = []


def err(where, msg):
    if f"{where}: {msg}" not in errors:
        errors.append(f"{where}: {msg}")


def series_names():
    """Queryable series name -> (family, labels, is_bucket)."""
    out = {}
    for fam, (typ, labels) in SPEC.items():
        labels = dict(labels, workspace=None)
        if typ == "histogram":
            out[fam + "_bucket"] = (fam, dict(labels, le=None), True)
            out[fam + "_sum"] = (fam, labels, False)
            out[fam + "_count"] = (fam, labels, False)
        else:
            out[fam] = (fam, labels, False)
    return out


SERIES = series_names()

# --- PromQL scanning (enough for names, matchers and grouping labels) ---
STRING = r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`'
NAME = r"[A-Za-z_:][A-Za-z0-9_:]*"
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool",
            "and", "or", "unless", "offset", "inf", "nan"}


def selectors(expr):
    """Yields (name, matchers) for each vector selector; matchers: [(label, op, value)]."""
    text = expr
    # name{...}: the braces may hold quoted strings with any character.
    brace = re.compile(r"(?<![\w:$.])(" + NAME + r")?\s*\{((?:" + STRING + r"|[^{}\"'`])*)\}")
    seen = set()
    for m in brace.finditer(text):
        name = m.group(1) or ""
        matchers = [(lm.group(1), lm.group(2), lm.group(3)[1:-1])
                    for lm in re.finditer(r"(" + NAME + r")\s*(=~|!~|!=|=)\s*(" + STRING + r")", m.group(2))]
        if name in KEYWORDS:   # `by {`? not PromQL, but be safe
            continue
        seen.add(m.start(1) if m.group(1) else m.start())
        yield name, matchers
    # Bare names: drop strings, braces, ranges, grouping clauses, calls.
    bare = re.sub(STRING, '""', text)
    bare = re.sub(r"\{[^{}]*\}", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", " ", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    for m in re.finditer(r"(?<![\w:$.])(" + NAME + r")(?![\w:])(?!\s*\()", bare):
        name = m.group(1)
        if name.lower() in KEYWORDS:
            continue
        yield name, []


def grouping_labels(expr):
    bare = re.sub(STRING, '""', expr)
    for m in re.finditer(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", bare):
        for label in m.group(2).split(","):
            if label.strip():
                yield label.strip()


def check_expr(where, expr, recorded):
    names = []
    for name, matchers in selectors(expr):
        if not name:
            err(where, f"selector without a metric name: {{{', '.join(l + o + repr(v) for l, o, v in matchers)}}}")
            continue
        names.append(name)
        if name in SERIES:
            fam, labels, _ = SERIES[name]
            allowed = dict(labels)
            for l in TARGET_LABELS:
                allowed[l] = None
        elif name in SPEC:
            err(where, f"{name} is a {SPEC[name][0]}: query {name}_bucket, _sum or _count")
            continue
        elif name in recorded:
            allowed = recorded[name]
        elif name in PROMETHEUS_SERIES:
            allowed = {l: None for l in TARGET_LABELS}
        elif name.startswith(OTHER_PREFIXES):
            continue
        elif ":" in name:
            err(where, f"{name} is not recorded by any rule in the rules file")
            continue
        else:
            err(where, f"{name} is not a metric leadrouterd serves (see the list in deploy/check.sh)")
            continue
        for label, op, value in matchers:
            if label == "__name__":
                continue
            if label not in allowed:
                err(where, f"{name} has no label {label!r} (labels: {', '.join(sorted(allowed))})")
                continue
            values = allowed[label]
            if values is None or "$" in value or op in ("!=", "!~"):
                continue
            alternatives = value.split("|") if op == "=~" and re.fullmatch(r"[\w|]+", value) else \
                [value] if op == "=" else []
            for v in alternatives:
                if v not in values:
                    err(where, f'{name}{{{label}{op}"{value}"}}: {v!r} is not a value of {label} ({", ".join(sorted(values))})')
    if not names:
        err(where, f"no metric in query: {expr}")
    known = set(TARGET_LABELS)
    for n in names:
        if n in SERIES:
            known |= set(SERIES[n][1])
        elif n in recorded:
            known |= set(recorded[n])
        elif n.startswith(OTHER_PREFIXES):
            known = None
            break
    if known is not None:
        for label in grouping_labels(expr):
            if label not in known:
                err(where, f"grouping label {label!r} is on none of the queried series ({', '.join(names)})")
    return names


# --- rules file: the YAML subset leadrouter.rules.yml is written in ---
BLOCK = {"|", "|-", "|+", ">", ">-", ">+"}


def unquote(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def indent(line):
    return len(line) - len(line.lstrip(" "))


def parse_rules(path):
    lines = [l.rstrip("\n") for l in open(path, encoding="utf-8")]
    rules = []
    cur = None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)- (record|alert):\s*(.+)$", line)
        if m:
            cur = {"kind": m.group(2), "name": unquote(m.group(3)), "line": i + 1,
                   "indent": len(m.group(1)) + 2, "labels": {}, "annotations": {}, "expr": None}
            rules.append(cur)
            i += 1
            continue
        if cur is None or not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        if indent(line) < cur["indent"]:
            cur = None
            continue
        km = re.match(r"^(\s*)(expr|labels|annotations):\s*(.*)$", line)
        if km and indent(line) == cur["indent"]:
            key, value = km.group(2), km.group(3).strip()
            body, j = [], i + 1
            while j < len(lines) and (not lines[j].strip() or indent(lines[j]) > cur["indent"]):
                body.append(lines[j])
                j += 1
            if key == "expr":
                cur["expr"] = "\n".join(l.strip() for l in body) if value in BLOCK else unquote(value)
            else:
                child = min((indent(l) for l in body if l.strip()), default=0)
                for l in body:
                    cm = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*):\s*(.*)$", l)
                    if cm and indent(l) == child:
                        cur[key][cm.group(1)] = unquote(cm.group(2))
            i = j
            continue
        i += 1
    return rules


rules = parse_rules(rules_path)
if rule_count and int(rule_count) != len(rules):
    err(rules_path, f"promtool found {rule_count} rules, this check parsed {len(rules)}: keep the file's layout")
# A recorded series may carry the labels (and values) of the series its
# expression reads.
recorded = {}
for r in rules:
    if r["kind"] == "record":
        labels = {l: None for l in TARGET_LABELS}
        for n, _ in selectors(r["expr"] or ""):
            for l, values in (SERIES.get(n, (None, {}))[1] or recorded.get(n, {})).items():
                old = labels.get(l, set())
                labels[l] = None if values is None or old is None else old | values
        recorded[r["name"]] = labels
alerts = [r for r in rules if r["kind"] == "alert"]
for r in rules:
    where = f"{rules_path}:{r['line']} {r['name']}"
    if not r["expr"]:
        err(where, "no expr found")
        continue
    check_expr(where, r["expr"], recorded)
    if r["kind"] == "alert":
        if r["labels"].get("severity") not in ("critical", "warning", "info"):
            err(where, "needs a severity label: critical, warning or info")
        for a in ("summary", "description"):
            if not r["annotations"].get(a):
                err(where, f"needs a {a} annotation")

# Every alert needs a test where it fires and one where it does not.
fires, quiet = set(), set()
tlines = open(tests_path, encoding="utf-8").read().splitlines()
for n, line in enumerate(tlines):
    m = re.match(r"^\s*alertname:\s*(\S+)\s*$", line)
    if not m:
        continue
    name = unquote(m.group(1))
    for nxt in tlines[n + 1:]:
        em = re.match(r"^\s*exp_alerts:\s*(.*?)\s*(#.*)?$", nxt)
        if em:
            (quiet if em.group(1) == "[]" else fires).add(name)
            break
        if re.match(r"^\s*-\s", nxt):
            quiet.add(name)   # no exp_alerts: expects none
            break
for r in alerts:
    if r["name"] not in fires:
        err(tests_path, f"no test case where {r['name']} fires")
    if r["name"] not in quiet:
        err(tests_path, f"no test case where {r['name']} does not fire")

# --- dashboard ---
dash = json.load(open(dash_path, encoding="utf-8"))
for key in ("uid", "title", "schemaVersion", "panels", "templating"):
    if key not in dash:
        err(dash_path, f"no {key!r}")
variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
ds_vars = [n for n, v in variables.items() if v.get("type") == "datasource" and v.get("query") == "prometheus"]
if not ds_vars:
    err(dash_path, "needs a data source variable of type prometheus (templating)")
ds_uids = {f"${{{n}}}" for n in ds_vars} | {f"${n}" for n in ds_vars}


def grafana_to_promql(expr):
    """Replaces Grafana variables with values promtool can parse."""
    def repl(m):
        name = m.group(1) or m.group(2)
        return "5m" if name in ("__rate_interval", "__interval", "__range") else ".*"
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", repl, expr)


queries = []
for v in variables.values():
    if v.get("type") != "query":
        continue
    q = v.get("definition") or (v.get("query") or {}).get("query", "")
    m = re.fullmatch(r"\s*label_values\((.*),\s*(" + NAME + r")\s*\)\s*", q)
    if not m:
        err(dash_path, f"variable {v.get('name')}: expected label_values(selector, label), got {q!r}")
        continue
    where = f"{dash_path} variable {v.get('name')}"
    names = check_expr(where, grafana_to_promql(m.group(1)), recorded)
    if not any(m.group(2) in SERIES.get(n, (None, {}))[1] or m.group(2) in TARGET_LABELS for n in names):
        err(where, f"label {m.group(2)!r} is not on {', '.join(names)}")
    if v.get("datasource", {}).get("uid") not in ds_uids:
        err(where, "datasource.uid must be the data source variable")

ids = set()
boxes = []
panels = []
for p in dash.get("panels", []):
    panels.append(p)
    panels.extend(p.get("panels", []))   # collapsed rows hold their panels
for p in panels:
    where = f"{dash_path} panel {p.get('id')} {p.get('title')!r}"
    if p.get("id") in ids or not isinstance(p.get("id"), int):
        err(where, "panel ids must be unique integers")
    ids.add(p.get("id"))
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] + g["w"] > 24:
        err(where, f"bad gridPos {g}")
    else:
        for other_where, o in boxes:
            if g["x"] < o["x"] + o["w"] and o["x"] < g["x"] + g["w"] and g["y"] < o["y"] + o["h"] and o["y"] < g["y"] + g["h"]:
                err(where, f"overlaps {other_where}")
        boxes.append((where, g))
    if p.get("type") == "row":
        continue
    if p.get("datasource", {}).get("uid") not in ds_uids:
        err(where, "datasource.uid must be the data source variable")
    targets = p.get("targets", [])
    if not targets:
        err(where, "no query")
    for t in targets:
        expr = t.get("expr", "")
        if t.get("datasource", {}).get("uid") not in ds_uids:
            err(f"{where} {t.get('refId')}", "datasource.uid must be the data source variable")
        if not expr.strip():
            err(f"{where} {t.get('refId')}", "empty expr")
            continue
        check_expr(f"{where} {t.get('refId')}", grafana_to_promql(expr), recorded)
        queries.append((f"panel {p.get('id')} {t.get('refId')}", grafana_to_promql(expr)))

# Dashboard queries as recording rules: promtool check rules parses them.
with open(queries_out, "w", encoding="utf-8") as f:
    f.write("groups:\n  - name: dashboard-queries\n    rules:\n")
    for n, (where, expr) in enumerate(queries):
        f.write(f"      - record: dashboard:query:{n}  # {where}\n        expr: {json.dumps(expr)}\n")

# --- the /metrics dump, when given ---
if dump_path:
    types, present, label_values = {}, set(), {}
    for line in open(dump_path, encoding="utf-8", errors="replace"):
        line = line.strip()
        m = re.match(r"^# TYPE (\S+) (\S+)$", line)
        if m:
            types[m.group(1)] = m.group(2)
            continue
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^(" + NAME + r")(?:\{(.*)\})?\s", line)
        if not m:
            continue
        present.add(m.group(1))
        for lm in re.finditer(r"(" + NAME + r")=\"((?:[^\"\\]|\\.)*)\"", m.group(2) or ""):
            label_values.setdefault((m.group(1), lm.group(1)), set()).add(lm.group(2))
    for fam, typ in sorted(types.items()):
        if not fam.startswith("leadrouter_"):
            continue
        if fam not in SPEC:
            err(dump_path, f"leadrouterd serves {fam} ({typ}), which the list in deploy/check.sh lacks")
        elif SPEC[fam][0] != typ:
            err(dump_path, f"{fam} is a {typ}, the list in deploy/check.sh says {SPEC[fam][0]}")
    for (series, label), values in sorted(label_values.items()):
        if not series.startswith("leadrouter_"):
            continue
        if series not in SERIES:
            if series not in SPEC:
                err(dump_path, f"series {series} is not in the list in deploy/check.sh")
            continue
        allowed = SERIES[series][1]
        if label not in allowed:
            err(dump_path, f"{series} has label {label!r}, which the list in deploy/check.sh lacks")
        elif allowed[label] is not None and not values <= allowed[label]:
            err(dump_path, f"{series}{{{label}}} has values {', '.join(sorted(values - allowed[label]))} the list in deploy/check.sh lacks")
    referenced = set()
    for r in rules:
        referenced |= {n for n, _ in selectors(r["expr"] or "")}
    for _, expr in queries:
        referenced |= {n for n, _ in selectors(expr)}
    missing = sorted(n for n in referenced if n in SERIES and n not in present)
    n_lr = len([f for f in types if f.startswith("leadrouter_")])
    print(f"metrics dump {dump_path}: {n_lr} leadrouter_* metrics")
    if missing:
        print("  queried, not in this dump (no observation yet): " + ", ".join(missing))

if errors:
    print(f"{len(errors)} problem(s):", file=sys.stderr)
    for e in errors:
        print("  " + e, file=sys.stderr)
    sys.exit(1)
print(f"{len(rules)} rules ({len(alerts)} alerts, each tested firing and not firing), "
      f"{len([p for p in panels if p.get('type') != 'row'])} dashboard panels, {len(queries)} dashboard queries: "
      "metric names, labels and values all in the list")
PY

echo "check: promtool check rules (the dashboard's queries, Grafana variables replaced)"
promtool check rules "$tmp/dashboard-queries.yml" >/dev/null || {
	promtool check rules "$tmp/dashboard-queries.yml" >&2 || true
	echo "check.sh: a dashboard query is not valid PromQL (see above)" >&2
	exit 1
}
echo "deploy/check.sh: OK"
