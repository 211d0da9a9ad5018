"""Dashboards against a real ClickHouse engine (chDB).

The exporter's tables are created from clickhouseexporter's own SQL templates,
read at test time from the module pinned in builder-config.yaml and filled the
way the exporter's Go code fills them (fmt.Sprintf: database, table, ON CLUSTER
string, engine, TTL). deploy/clickhouse/*.sql is applied on top. Rows come from
OTLP JSON documents shaped like the collector's file exporter output after the
gpumodel processor, for a known schedule, converted to rows the way the
exporter converts them (attribute values via pcommon.Value.AsString).
Every panel query is run with the Grafana ClickHouse data source's macros
expanded for a fixed range (see expand()).
"""
import datetime as dt
import decimal
import glob
import gzip
import json
import os
import re
import subprocess

import pytest
from chdb import session as chs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASH_DIR = os.path.join(ROOT, "deploy", "grafana", "dashboards")
MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"

INTERVAL_S = 300  # Grafana's $__interval for the test's panel width


# --- the exporter's DDL, from the pinned module -----------------------------------

def pinned_version():
    with open(os.path.join(ROOT, "builder-config.yaml")) as f:
        m = re.search(re.escape(MODULE) + r"\s+(v\S+)", f.read())
    assert m, "builder-config.yaml does not pin " + MODULE
    return m.group(1)


def module_dir():
    version = pinned_version()
    go = os.environ.get("GO", "go")
    out = subprocess.run([go, "list", "-m", "-f", "{{.Dir}}", MODULE + "@" + version], cwd=ROOT,
                         capture_output=True, text=True)
    d = out.stdout.strip()
    if out.returncode != 0 or not d:
        gomodcache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True,
                                    check=True).stdout.strip()
        d = os.path.join(gomodcache, MODULE + "@" + version)
    if not os.path.isdir(d):
        subprocess.run([go, "mod", "download", MODULE + "@" + version], cwd=ROOT, check=True)
    assert os.path.isdir(os.path.join(d, "internal", "sqltemplates")), d
    return d


def go_sprintf(tmpl, *args):
    """The subset of Go's fmt.Sprintf the templates use: %s and %q (strings)."""
    args = list(args)

    def sub(m):
        if m.group(0) == "%%":
            return "%"
        v = args.pop(0)
        return json.dumps(v) if m.group(0) == "%q" else v
    out = re.sub(r"%%|%s|%q", sub, tmpl)
    assert not args, "unused arguments"
    return out


def exporter_ddl():
    """The statements the exporter runs with create_schema and default config:
    database "default", no cluster, engine MergeTree(), no TTL
    (config.go tableEngineString/tableClusterString, internal.GenerateTTLExpr(0) == "")."""
    t = os.path.join(module_dir(), "internal", "sqltemplates")
    read = lambda n: open(os.path.join(t, n)).read()
    db, cluster, engine, ttl = "default", "", "MergeTree()", ""
    stmts = []
    # internal/metrics/metrics_model.go NewMetricsTable: (database, name, cluster, engine, ttl)
    for kind in ("gauge", "sum", "summary", "histogram", "exp_histogram"):
        name = "otel_metrics_" + ("exponential_histogram" if kind == "exp_histogram" else kind)
        stmts.append(go_sprintf(read("metrics_%s_table.sql" % kind), db, name, cluster, engine, ttl))
    # exporter_traces.go renderCreateTracesTableSQL / TraceIDTs / MaterializedView
    stmts.append(go_sprintf(read("traces_table.sql"), db, "otel_traces", cluster, engine, ttl))
    stmts.append(go_sprintf(read("traces_id_ts_lookup_table.sql"), db, "otel_traces", cluster, engine, ttl))
    stmts.append(go_sprintf(read("traces_id_ts_lookup_mv.sql"), db, "otel_traces", cluster,
                            db, "otel_traces", db, "otel_traces"))
    return stmts


# --- the known schedule: the single source of the expected numbers ---------------

TESTDATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata")
SCHEDULE = json.load(open(os.path.join(TESTDATA, "schedule.json")))
FROM = dt.datetime.fromisoformat(SCHEDULE["from"].replace("Z", "+00:00"))
TO = FROM + dt.timedelta(hours=SCHEDULE["hours"])
DEVICES = {d["uuid"] + ("/%d" % d["mig_id"] if d.get("mig_profile") else ""): d for d in SCHEDULE["devices"]}
NODE_OF = {s["name"]: s["node"] for s in SCHEDULE["sources"]}


def projects_pi():
    """namespace -> pi from the metadata file the processor read while recording (a flat YAML list)."""
    out, ns = {}, None
    for line in open(os.path.join(TESTDATA, "projects.yaml")):
        m = re.match(r"\s*-?\s*(namespace|pi):\s*(\S+)", line)
        if m and m.group(1) == "namespace":
            ns = m.group(2)
        elif m:
            out[ns] = m.group(2)
    return out


PI = projects_pi()


def fraction(hw_id):
    """The schedule's devices are A100s: a MIG profile <n>g counts n sevenths."""
    prof = DEVICES[hw_id].get("mig_profile")
    return int(prof.split("g")[0]) / 7 if prof else 1.0


def sessions():
    """The spans the rules' alerts make of the allocations: busy at or above the threshold is gpu.usage,
    below gpu.idle; an allocation shorter than the rule's for: never fires."""
    rules = SCHEDULE["alerts"]
    out = []
    for a in SCHEDULE["allocations"]:
        rule = rules["in_use"] if a["busy"] >= rules["busy_threshold"] else rules["idle"]
        if a["hours"] * 3600 > rule["for_s"]:
            out.append(dict(a, span=rule["span"]))
    return sorted(out, key=lambda x: x["start_h"])


def expected():
    e = {}
    thr = SCHEDULE["alerts"]["busy_threshold"]
    for a in SCHEDULE["allocations"]:
        x = e.setdefault(a["namespace"], {"allocated": 0.0, "used": 0.0, "idle": 0.0, "devices": set(),
                                          "idle_sessions_h": 0.0})
        f = fraction(a["device"])
        x["allocated"] += f * a["hours"]
        x["used"] += f * a["busy"] * a["hours"]
        x["idle"] += f * a["hours"] if a["busy"] < thr else 0.0
        x["devices"].add(a["device"])
    for s in sessions():
        if s["span"] == SCHEDULE["alerts"]["idle"]["span"]:
            e[s["namespace"]]["idle_sessions_h"] += s["hours"]
    for x in e.values():
        x["held"] = len(x.pop("devices"))
    return e


EXPECTED = expected()


def energy_kwh():
    """Per node: whole GPUs' power over the schedule (idle power outside allocations); DCGM reports no
    power per MIG slice."""
    out = {}
    for hw_id, d in DEVICES.items():
        if d.get("mig_profile"):
            continue
        allocs = [a for a in SCHEDULE["allocations"] if a["device"] == hw_id]
        held = sum(a["hours"] for a in allocs)
        wh = sum(a["power_w"] * a["hours"] for a in allocs) + d["idle"]["power_w"] * (SCHEDULE["hours"] - held)
        node = NODE_OF[d["source"]]
        out[node] = out.get(node, 0.0) + wh / 1000
    return out


def peak_temp():
    return {hw: max([d["idle"]["temp_c"]] + [a["temp_c"] for a in SCHEDULE["allocations"] if a["device"] == hw])
            for hw, d in DEVICES.items() if not d.get("mig_profile")}


# --- the recorded pipeline output (internal/dashboardfixture) to the exporter's rows ------

def fixture_lines(name):
    path = os.path.join(TESTDATA, name)
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def as_string(v):
    """pcommon.Value.AsString for the types the pipeline writes: bool true/false, double
    strconv.FormatFloat(f, 'f', -1, 64), int decimal, string as is."""
    (k, x), = v.items() if v else [("stringValue", "")]
    if k == "stringValue":
        return x
    if k == "boolValue":
        return "true" if x else "false"
    if k == "intValue":
        return str(int(x))
    if k == "doubleValue":
        d = decimal.Decimal(repr(float(x)))
        return str(int(d)) if d == d.to_integral_value() else format(d, "f")
    raise AssertionError("attribute type the converter does not know: " + k)


def amap(attrs):
    return {a["key"]: as_string(a["value"]) for a in attrs or []}


def q(s):
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def mlit(m):
    return "map(" + ", ".join("%s, %s" % (q(k), q(v)) for k, v in m.items()) + ")" if m else "map()"


def ns(n):
    return "fromUnixTimestamp64Nano(toInt64(%d))" % int(n or 0)


def insert_sql(template, table):
    """The exporter's INSERT (internal/sqltemplates/*_insert.sql) for database default: its column list,
    with the values of each row as literals instead of the driver's ? placeholders."""
    sql = go_sprintf(open(os.path.join(module_dir(), "internal", "sqltemplates", template)).read(), "default", table)
    head = sql[:sql.index("VALUES")]
    return head, sql.count("?")


def gauge_rows(doc):
    """internal/metrics/gauge_metrics.go insert: one row per data point with, in the template's order,
    ResourceAttributes, ResourceSchemaUrl, ScopeName, ScopeVersion, ScopeAttributes, ScopeDroppedAttrCount,
    ScopeSchemaUrl, ServiceName (resource service.name), MetricName, MetricDescription, MetricUnit,
    Attributes, StartTimeUnix, TimeUnix, Value (double, or int as float, 0 when empty), Flags, Exemplars.*"""
    for r in doc["resourceMetrics"]:
        res = amap(r["resource"].get("attributes"))
        for sm in r["scopeMetrics"]:
            scope = sm.get("scope", {})
            for m in sm["metrics"]:
                assert set(m) & {"gauge", "sum", "histogram", "summary", "exponentialHistogram"} == {"gauge"}, \
                    "only gauges are recorded; convert %s too before loading it" % m["name"]
                for p in m["gauge"]["dataPoints"]:
                    value = float(p["asDouble"]) if "asDouble" in p else float(p.get("asInt", 0))
                    assert not p.get("exemplars"), "exemplars are not converted"
                    yield [mlit(res), q(r.get("schemaUrl", "")), q(scope.get("name", "")),
                           q(scope.get("version", "")), mlit(amap(scope.get("attributes"))),
                           str(scope.get("droppedAttributesCount", 0)), q(sm.get("schemaUrl", "")),
                           q(res.get("service.name", "")), q(m["name"]), q(m.get("description", "")),
                           q(m.get("unit", "")), mlit(amap(p.get("attributes"))), ns(p.get("startTimeUnixNano")),
                           ns(p["timeUnixNano"]), repr(value), str(p.get("flags", 0)), "[]", "[]", "[]", "[]", "[]"]


SPAN_KIND = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"]  # ptrace.SpanKind.String()
STATUS = ["Unset", "Ok", "Error"]  # ptrace.StatusCode.String()


def span_rows(doc):
    """exporter_traces.go pushTraceData: Timestamp (start), TraceId, SpanId, ParentSpanId (hex), TraceState,
    SpanName, SpanKind, ServiceName, ResourceAttributes, ScopeName, ScopeVersion, SpanAttributes,
    Duration (end - start, ns), StatusCode, StatusMessage, Events.*, Links.*"""
    for r in doc["resourceSpans"]:
        res = amap(r["resource"].get("attributes"))
        for ss in r["scopeSpans"]:
            scope = ss.get("scope", {})
            for s in ss["spans"]:
                st, en = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                assert not s.get("events") and not s.get("links"), "events and links are not converted"
                status = s.get("status", {})
                yield [ns(st), q(s["traceId"]), q(s["spanId"]), q(s.get("parentSpanId", "")),
                       q(s.get("traceState", "")), q(s["name"]), q(SPAN_KIND[s.get("kind", 0)]),
                       q(res.get("service.name", "")), mlit(res), q(scope.get("name", "")),
                       q(scope.get("version", "")), mlit(amap(s.get("attributes"))), str(en - st),
                       q(STATUS[status.get("code", 0)]), q(status.get("message", "")), "[]", "[]", "[]",
                       "[]", "[]", "[]", "[]"]


def load(s, template, table, rows):
    head, ncols = insert_sql(template, table)
    n = 0
    for i in range(0, len(rows), 2000):
        batch = rows[i:i + 2000]
        assert all(len(r) == ncols for r in batch), "a row does not match the exporter's column list"
        s.query(head + "VALUES " + ", ".join("(" + ", ".join(r) + ")" for r in batch))
        n += len(batch)
    return n


ROWS = {}


@pytest.fixture(scope="module")
def db():
    s = chs.Session()
    for stmt in exporter_ddl():
        s.query(stmt)
    for f in sorted(glob.glob(os.path.join(ROOT, "deploy", "clickhouse", "*.sql"))):
        for stmt in split_sql(open(f).read()):
            s.query(stmt)
    gauges = [row for doc in fixture_lines("metrics.jsonl.gz") for row in gauge_rows(doc)]
    spans = [row for doc in fixture_lines("traces.jsonl") for row in span_rows(doc)]
    ROWS["otel_metrics_gauge"] = load(s, "metrics_gauge_insert.sql", "otel_metrics_gauge", gauges)
    # Every span twice: several gateway replicas behind one Service may each
    # record the same session (same deterministic IDs) when Alertmanager's HA
    # peers notify different replicas, and ClickHouse keeps both rows.
    ROWS["otel_traces"] = load(s, "traces_insert.sql", "otel_traces", spans + spans)
    print("rows loaded: %s" % ROWS)
    yield s
    s.close()


def split_sql(text):
    text = "\n".join(l for l in text.splitlines() if not l.strip().startswith("--"))
    return [x.strip() for x in text.split(";") if x.strip()]


def query(db, sql):
    r = json.loads(db.query(sql, "JSON").bytes() or b'{"meta":[],"data":[]}')
    return [m["name"] for m in r["meta"]], r["data"]


# --- the Grafana ClickHouse data source's macros ----------------------------------

def expand(sql, variables):
    """Expand like grafana-clickhouse-datasource v4 (pkg/macros) for the range FROM..TO:
    $__timeFilter(c) -> c >= toDateTime(from) AND c <= toDateTime(to)  (seconds)
    $__fromTime / $__toTime -> toDateTime(from) / toDateTime(to)
    $__timeInterval(c) -> toStartOfInterval(toDateTime(c), INTERVAL <interval_s> second)
    $__interval_s -> interval in seconds
    $__conditionalAll(cond, $v) -> cond, or 1=1 when $v is All (Grafana's frontend)
    then Grafana's template variables: ${v:singlequote} -> 'a','b'; ${v} and $v -> a,b
    (a multi-value variable is a list here)."""
    f, t = int(FROM.timestamp()), int(TO.timestamp())

    sql = conditional_all(sql, variables)
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: "%s >= toDateTime(%d) AND %s <= toDateTime(%d)" % (m.group(1), f, m.group(1), t), sql)
    sql = re.sub(r"\$__timeInterval\(([^)]+)\)",
                 lambda m: "toStartOfInterval(toDateTime(%s), INTERVAL %d second)" % (m.group(1), INTERVAL_S), sql)
    sql = sql.replace("$__fromTime", "toDateTime(%d)" % f).replace("$__toTime", "toDateTime(%d)" % t)
    sql = sql.replace("$__interval_s", str(INTERVAL_S))
    for k, v in variables.items():
        vals = v if isinstance(v, list) else [v]
        sql = sql.replace("${%s:singlequote}" % k, ",".join(q(x) for x in vals))
        sql = sql.replace("${%s}" % k, ",".join(vals))
        sql = re.sub(r"\$%s\b" % re.escape(k), lambda m: ",".join(vals), sql)
    assert "$" not in sql, "unexpanded macro or variable: " + sql
    return sql


def conditional_all(sql, variables):
    """$__conditionalAll(condition, $var) as the plugin's frontend applies it (applyConditionalAll):
    from the last occurrence backwards, arguments split at top-level commas, the second one `$name`
    (no braces: the plugin looks the variable up by the name after the `$`)."""
    macro = "$__conditionalAll("
    i = sql.rfind(macro)
    while i != -1:
        depth, args, start, j = 0, [], i + len(macro), i + len(macro)
        while True:
            c = sql[j]
            if c == "(":
                depth += 1
            elif c == ")" and depth > 0:
                depth -= 1
            elif c in ",)" and depth == 0:
                args.append(sql[start:j].strip())
                start = j + 1
                if c == ")":
                    break
            j += 1
        assert len(args) == 2 and re.fullmatch(r"\$\w+", args[1]), "bad $__conditionalAll: " + sql[i:j + 1]
        assert args[1][1:] in variables, "undefined variable in $__conditionalAll: " + args[1]
        value = variables[args[1][1:]]
        sql = sql[:i] + ("1=1" if value == "$__all" or value == [] else args[0]) + sql[j + 1:]
        i = sql.rfind(macro)
    return sql


def dashboards():
    files = sorted(glob.glob(os.path.join(DASH_DIR, "*.json")))
    assert files, "no dashboards under " + DASH_DIR
    return [(os.path.basename(f), json.load(open(f))) for f in files]


def all_panels(d):
    for p in d.get("panels", []):
        yield p
        yield from p.get("panels", [])


def panel_queries(d):
    for p in all_panels(d):
        for t in p.get("targets", []):
            if t.get("rawSql"):
                yield p, t["rawSql"]


def panel(d, title):
    (p,) = [p for p in all_panels(d) if p["title"] == title]
    return p["targets"][0]["rawSql"]


DASHBOARDS = dashboards()


# --- tests ------------------------------------------------------------------------

def test_exporter_ddl_from_pinned_module(db):
    names, rows = query(db, "SELECT name FROM system.tables WHERE database = 'default' ORDER BY name")
    tables = {r["name"] for r in rows}
    assert {"otel_metrics_gauge", "otel_metrics_sum", "otel_traces", "otel_traces_trace_id_ts", "gpu_samples",
            "gpu_hours_hourly", "gpu_hours_hourly_mv", "gpu_topology", "gpu_topology_mv"} <= tables
    _, rows = query(db, "SELECT count() AS n, uniqExact(TraceId) AS traces FROM otel_traces_trace_id_ts")
    # the exporter's materialized view works on our rows: one trace per session (its span and start marker)
    assert int(rows[0]["traces"]) == len(sessions())
    _, rows = query(db, "SELECT count() AS n, uniqExact(TraceId, SpanId) AS spans FROM otel_traces "
                        "WHERE SpanName IN ('gpu.usage', 'gpu.idle')")
    assert int(rows[0]["spans"]) == len(sessions())
    assert int(rows[0]["n"]) == 2 * len(sessions()), "each span is loaded twice, as from two gateway replicas"


@pytest.mark.parametrize("name,dash", DASHBOARDS, ids=[n for n, _ in DASHBOARDS])
@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_every_query_runs(db, name, dash, project):
    variables = {"project": project, "hub": SCHEDULE["hub"], "cluster": SCHEDULE["cluster"], "node": "$__all"}
    queries = [("variable " + v["name"], v["query"]) for v in dash["templating"]["list"] if v["type"] == "query"]
    queries += [("panel %d" % p["id"], sql) for p, sql in panel_queries(dash)]
    assert queries
    for what, sql in queries:
        try:
            query(db, expand(sql, variables))
        except Exception as e:  # noqa: BLE001
            pytest.fail("%s %s: %s" % (name, what, e))


def run(db, dash, title, project=None, **variables):
    if project is not None:
        variables["project"] = project
    return query(db, expand(panel(dash, title), variables))


RP = dict(DASHBOARDS)["research-project.json"]


def approx(x, want):
    """Within 2% of the schedule (absolute 1e-6 for an expected 0)."""
    return abs(float(x) - want) <= max(0.02 * want, 1e-6)


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_research_project_numbers(db, project):
    e = EXPECTED[project]
    got = {}
    for title, key, col in [("GPU-hours allocated", "allocated", "gpu_hours_allocated"),
                            ("GPU-hours used", "used", "gpu_hours_used"),
                            ("Idle but allocated GPU-hours", "idle", "gpu_hours_idle"),
                            ("GPUs and slices held", "held", "gpus_held"),
                            ("Idle session hours (gpu.idle)", "idle_sessions_h", "idle_session_hours")]:
        _, rows = run(db, RP, title, project)
        got[key] = float(rows[0][col])
        assert approx(got[key], e[key]), (project, title, got[key], e[key])
    _, rows = run(db, RP, "Utilization (GPU-hour weighted)", project)
    assert approx(rows[0]["utilization"], e["used"] / e["allocated"])
    # the per-interval series adds up to the totals
    _, rows = run(db, RP, "GPU-hours allocated and used per interval", project)
    assert approx(sum(float(r["gpu_hours_allocated"]) for r in rows), e["allocated"])
    assert approx(sum(float(r["gpu_hours_used"]) for r in rows), e["used"])
    # per GPU/slice table: one row per held GPU or slice, adding up to the totals
    _, rows = run(db, RP, "Per GPU and slice", project)
    assert len(rows) == e["held"]
    assert approx(sum(float(r["gpu_hours_allocated"]) for r in rows), e["allocated"])
    # the same from the hourly rollup, per day
    _, rows = run(db, RP, "GPU-hours per day (hourly rollup, long ranges)", project)
    assert len(rows) == len({(FROM + dt.timedelta(hours=h)).date() for h in range(int(SCHEDULE["hours"]))})
    assert approx(sum(float(r["gpu_hours_allocated"]) for r in rows), e["allocated"])
    assert approx(sum(float(r["gpu_hours_used"]) for r in rows), e["used"])
    _, rows = run(db, RP, "GPU memory used", project)
    assert rows and all(float(r["fb_used_mib"]) > 0 for r in rows)
    print("%s: %s" % (project, got))


@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_sessions_table_and_tempo_link(db, project):
    want = [x for x in sessions() if x["namespace"] == project]
    names, rows = run(db, RP, "Usage and idle sessions", project)
    assert "TraceId" in names
    assert [(r["Session"], r["GPU"], float(r["Hours"]), r["MigProfile"]) for r in rows] == [
        (x["span"], x["device"], x["hours"], DEVICES[x["device"]].get("mig_profile", "")) for x in want]
    assert all(re.fullmatch("[0-9a-f]{32}", r["TraceId"]) for r in rows)
    # the timeline: one point per interval a session covers, a 0 where it ends
    _, rows = run(db, RP, "Session timeline", project)
    points = {}
    for r in rows:
        key = (r["gpu"], int(r["state"]))
        points[key] = points.get(key, 0) + 1
    state = {SCHEDULE["alerts"]["in_use"]["span"]: 2, SCHEDULE["alerts"]["idle"]["span"]: 1}
    assert points == {k: v for x in want for k, v in (((x["device"], state[x["span"]]), x["hours"] * 3600 // INTERVAL_S),
                                                     ((x["device"], 0), 1))}, points


CM = dict(DASHBOARDS)["cluster-manager.json"]
SCOPE = {"hub": SCHEDULE["hub"], "cluster": SCHEDULE["cluster"], "node": "$__all"}


def test_cluster_manager_variables(db):
    got = {}
    for v in CM["templating"]["list"]:
        if v["type"] == "query":
            names, rows = query(db, expand(v["query"], SCOPE))
            got[v["name"]] = [r[names[0]] for r in rows]
    assert got == {"hub": [SCHEDULE["hub"]], "cluster": [SCHEDULE["cluster"]], "node": sorted(NODE_OF.values())}


def test_cluster_manager_numbers(db):
    held = {a["device"] for a in SCHEDULE["allocations"]}
    _, rows = run(db, CM, "GPUs and slices in use versus total", **SCOPE)
    assert (int(rows[0]["held"]), int(rows[0]["total"])) == (len(held), len(DEVICES))
    total_alloc = sum(e["allocated"] for e in EXPECTED.values())
    assert approx(rows[0]["avg_gpus_held"], total_alloc / SCHEDULE["hours"])
    _, rows = run(db, CM, "Allocation versus use per project and PI", **SCOPE)
    got = {r["namespace"]: r for r in rows}
    assert sorted(got) == sorted(EXPECTED)
    for ns_, e in EXPECTED.items():
        assert approx(got[ns_]["gpu_hours_allocated"], e["allocated"]), (ns_, got[ns_])
        assert approx(got[ns_]["gpu_hours_used"], e["used"]), (ns_, got[ns_])
        assert approx(got[ns_]["gpu_hours_idle"], e["idle"]), (ns_, got[ns_])
        assert got[ns_]["pi"] == PI[ns_]
        print("%s: GPU-hours allocated %.4f (schedule %.4f), used %.4f (schedule %.4f)" % (
            ns_, float(got[ns_]["gpu_hours_allocated"]), e["allocated"], float(got[ns_]["gpu_hours_used"]), e["used"]))
    _, rows = run(db, CM, "GPU-hours per PI", **SCOPE)
    got = {r["pi"]: r for r in rows}
    assert sorted(got) == sorted(PI[n] for n in EXPECTED)
    for ns_, e in EXPECTED.items():
        assert approx(got[PI[ns_]]["gpu_hours_allocated"], e["allocated"])
        assert approx(got[PI[ns_]]["gpu_hours_used"], e["used"])
    _, rows = run(db, CM, "Top idle allocated pods", **SCOPE)
    thr = SCHEDULE["alerts"]["busy_threshold"]
    idle = [a for a in SCHEDULE["allocations"] if a["busy"] < thr]
    assert [(r["namespace"], r["pod"]) for r in rows] == [(a["namespace"], a["pod"]) for a in idle]
    for r, a in zip(rows, idle):
        assert approx(r["gpu_hours_idle"], fraction(a["device"]) * a["hours"])
    _, rows = run(db, CM, "Energy per node", **SCOPE)
    got = {r["node"]: float(r["energy_kwh"]) for r in rows}
    want = energy_kwh()
    assert sorted(got) == sorted(want)
    for node, kwh in want.items():
        assert approx(got[node], kwh), (node, got[node], kwh)
    print("energy kWh: measured %s, schedule %s" % (got, want))
    _, rows = run(db, CM, "GPU temperature and XID errors", **SCOPE)
    temps = peak_temp()
    xids = {hw: [x["code"] for x in SCHEDULE["xid_errors"] if x["device"] == hw] for hw in temps}
    assert [(r["hw_id"], int(r["xid_samples"]), int(float(r["last_xid"]))) for r in rows] == [
        (hw, len(xids[hw]), (xids[hw] or [0])[-1])
        for hw in sorted(temps, key=lambda h: (-len(xids[h]), -temps[h]))]
    assert {r["hw_id"]: float(r["temp_c_max"]) for r in rows} == temps
    _, rows = run(db, CM, "GPU temperature", **SCOPE)
    assert max(float(r["temp_c_max"]) for r in rows) == max(temps.values())
    # one node selected instead of All: only that node's GPUs and slices
    for src in SCHEDULE["sources"]:
        on_node = [hw for hw, d in DEVICES.items() if d["source"] == src["name"]]
        _, rows = run(db, CM, "GPUs and slices in use versus total", hub=SCHEDULE["hub"], cluster=SCHEDULE["cluster"],
                      node=[src["node"]])
        assert (int(rows[0]["held"]), int(rows[0]["total"])) == (len(held & set(on_node)), len(on_node))
    _, rows = run(db, CM, "Power per node", hub=SCHEDULE["hub"], cluster=SCHEDULE["cluster"],
                  node=sorted(NODE_OF.values()))
    assert {r["node"] for r in rows} == set(want)


# --- deploy/clickhouse/002: hourly rollup and topology -------------------------------

HOURLY = "GPU-hours per project, hourly rollup (long ranges)"


def test_hourly_rollup_matches_raw_and_schedule(db):
    _, raw = run(db, CM, "Allocation versus use per project and PI", **SCOPE)
    _, hourly = run(db, CM, HOURLY, **SCOPE)
    raw, hourly = {r["namespace"]: r for r in raw}, {r["namespace"]: r for r in hourly}
    assert sorted(hourly) == sorted(raw) == sorted(EXPECTED)
    for ns_, e in EXPECTED.items():
        for col, key in [("gpu_hours_allocated", "allocated"), ("gpu_hours_used", "used"), ("gpu_hours_idle", "idle")]:
            assert approx(hourly[ns_][col], float(raw[ns_][col])), (ns_, col, hourly[ns_], raw[ns_])
            assert approx(hourly[ns_][col], e[key]), (ns_, col, hourly[ns_], e)
        assert hourly[ns_]["pi"] == PI[ns_]
        print("%s hourly rollup: allocated %.4f used %.4f (raw %.4f / %.4f)" % (
            ns_, float(hourly[ns_]["gpu_hours_allocated"]), float(hourly[ns_]["gpu_hours_used"]),
            float(raw[ns_]["gpu_hours_allocated"]), float(raw[ns_]["gpu_hours_used"])))
    # a node selected: the rollup honours the node variable like the raw panel
    node2 = SCHEDULE["sources"][1]["node"]
    _, rows = run(db, CM, HOURLY, hub=SCHEDULE["hub"], cluster=SCHEDULE["cluster"], node=[node2])
    want = {a["namespace"] for a in SCHEDULE["allocations"] if NODE_OF[DEVICES[a["device"]]["source"]] == node2}
    assert {r["namespace"] for r in rows} == want


def view_select(name):
    """The SELECT of a materialized view in deploy/clickhouse/002, as the documented backfill runs it."""
    text = open(os.path.join(ROOT, "deploy", "clickhouse", "002-gpu-hours-hourly.sql")).read()
    (stmt,) = [x for x in split_sql(text) if x.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS %s " % name)]
    return stmt[stmt.index(" AS\nSELECT") + 4:]


def test_hourly_backfill_equals_view(db):
    """Backfill as docs/dashboards.md says: the view's SELECT, bounded by the view's creation time, into
    the table. Here into a copy, over every row: the copy must equal what the view built on insert."""
    db.query("CREATE TABLE default.gpu_hours_hourly_backfill AS default.gpu_hours_hourly")
    bound = "toDateTime64(%d, 9)" % int(TO.timestamp() + 3600)
    sel = view_select("gpu_hours_hourly_mv").replace("\nGROUP BY", "\n  AND TimeUnix < %s\nGROUP BY" % bound)
    db.query("INSERT INTO default.gpu_hours_hourly_backfill " + sel)
    agg = ("SELECT namespace, sum(samples) AS s, round(sum(prof_sum), 6) AS p, min(first_seen) AS f, max(last_seen) AS l "
           "FROM default.%s GROUP BY namespace ORDER BY namespace")
    _, by_view = query(db, agg % "gpu_hours_hourly")
    _, by_backfill = query(db, agg % "gpu_hours_hourly_backfill")
    assert by_view == by_backfill and len(by_view) == len(EXPECTED) + 1  # the projects and the unallocated ''


def test_topology(db):
    _, rows = query(db, "SELECT hub, cluster, node, hw_id, namespace, pod, any(gpu_uuid) AS gpu_uuid, "
                        "any(mig_profile) AS mig_profile, round(max(fraction), 6) AS fraction, "
                        "toUnixTimestamp(min(first_seen)) AS f, toUnixTimestamp(max(last_seen)) AS l "
                        "FROM gpu_topology GROUP BY hub, cluster, node, hw_id, namespace, pod")
    got = {(r["node"], r["hw_id"], r["namespace"], r["pod"]): r for r in rows}
    want = set()
    for hw, d in DEVICES.items():
        want.add((NODE_OF[d["source"]], hw, "", ""))  # every device is also seen with no pod
    for a in SCHEDULE["allocations"]:
        want.add((NODE_OF[DEVICES[a["device"]]["source"]], a["device"], a["namespace"], a["pod"]))
    assert set(got) == want
    for (node, hw, ns_, pod), r in got.items():
        d = DEVICES[hw]
        assert (r["hub"], r["cluster"], r["gpu_uuid"], r["mig_profile"]) == (
            SCHEDULE["hub"], SCHEDULE["cluster"], d["uuid"], d.get("mig_profile", ""))
        assert approx(r["fraction"], fraction(hw))
        for a in SCHEDULE["allocations"]:
            if (a["device"], a["namespace"], a["pod"]) == (hw, ns_, pod):
                interval = [s["interval_s"] for s in SCHEDULE["sources"] if s["name"] == d["source"]][0]
                start = int(FROM.timestamp() + a["start_h"] * 3600)
                assert (int(r["f"]), int(r["l"])) == (start, start + int(a["hours"] * 3600) - interval)
    print("topology rows: %d" % len(rows))


def test_project_variable_lists_the_projects(db):
    (v,) = [v for v in RP["templating"]["list"] if v["name"] == "project"]
    names, rows = query(db, expand(v["query"], {}))
    assert [r[names[0]] for r in rows] == sorted(EXPECTED)


# Per-project access (deploy/clickhouse/policies) is tested in test_row_policies.py.


# --- structural checks ------------------------------------------------------------

BUILTIN = {"__value", "__data", "__field", "__series", "__from", "__to", "__interval", "__interval_ms",
           "__timeFilter", "__timeInterval", "__interval_s", "__conditionalAll", "__fromTime", "__toTime",
           "__dashboard", "__user", "__org", "__all"}


def strings(x):
    if isinstance(x, str):
        yield x
    elif isinstance(x, dict):
        for v in x.values():
            yield from strings(v)
    elif isinstance(x, list):
        for v in x:
            yield from strings(v)


@pytest.mark.parametrize("name,dash", DASHBOARDS, ids=[n for n, _ in DASHBOARDS])
def test_structure(db, name, dash):
    ids = [p["id"] for p in all_panels(dash)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    defined = {v["name"] for v in dash["templating"]["list"]}
    used = set()
    for s in strings(dash):
        used |= set(re.findall(r"\$\{(\w+)(?:[:.][^}]*)?\}", s)) | set(re.findall(r"\$(\w+)", s))
    assert not (used - defined - BUILTIN), "undefined variables: %s" % (used - defined - BUILTIN)
    ds_vars = {v["name"]: v["query"] for v in dash["templating"]["list"] if v["type"] == "datasource"}
    for p in all_panels(dash):
        for ref in [p.get("datasource")] + [t.get("datasource") for t in p.get("targets", [])]:
            if ref is not None:
                m = re.fullmatch(r"\$\{(\w+)\}", ref.get("uid", ""))
                assert m and ref["type"] == ds_vars.get(m.group(1)), (name, p["id"], ref)
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            m = re.fullmatch(r"\$\{(\w+)\}", v["datasource"]["uid"])
            assert m and m.group(1) in ds_vars
    tempo_vars = {k for k, t in ds_vars.items() if t == "tempo"}
    links = 0
    for p in all_panels(dash):
        for o in p.get("fieldConfig", {}).get("overrides", []):
            for prop in o["properties"]:
                for link in (prop["value"] if prop["id"] == "links" else []):
                    internal = link.get("internal")
                    if not internal:
                        continue
                    assert internal["datasourceUid"].strip("${}") in tempo_vars
                    assert internal["query"]["query"] == "${__value.raw}"
                    assert o["matcher"] == {"id": "byName", "options": "TraceId"}
                    # the field the link is on is a column the panel's query returns
                    for t in p["targets"]:
                        names, _ = query(db, expand(t["rawSql"], {"project": "team-a"}))
                        assert "TraceId" in names
                    links += 1
    if name == "research-project.json":
        assert links >= 1


def test_every_dashboard_is_provisioned():
    """Each dashboard is packed by deploy/grafana/kustomization.yaml and has a GrafanaDashboard."""
    names = {n for n, _ in DASHBOARDS}
    kust = open(os.path.join(ROOT, "deploy", "grafana", "kustomization.yaml")).read()
    packed = set(re.findall(r"-\s*([\w.-]+\.json)=dashboards/\1", kust))
    crs = open(os.path.join(ROOT, "deploy", "grafana", "operator", "grafanadashboards.yaml")).read()
    keys = set(re.findall(r"key:\s*([\w.-]+\.json)", crs))
    assert packed == names and keys == names, (names, packed, keys)
    uids = [d["uid"] for _, d in DASHBOARDS]
    assert len(uids) == len(set(uids))
