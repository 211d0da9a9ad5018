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
import glob
import json
import os
import re
import subprocess

import pytest
from chdb import session as chs

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DASH_DIR = os.path.join(ROOT, "deploy", "grafana", "dashboards")
MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter"

FROM = dt.datetime(2026, 11, 1, 0, 0, tzinfo=dt.timezone.utc)
TO = dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.timezone.utc)
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


# --- the known schedule, as OTLP JSON after the gpumodel processor ----------------

A100 = "NVIDIA A100-SXM4-80GB"
# (namespace, pod, node, hw.id, mig profile, fraction, allocated, start h, hours, busy, fb used MiB, power W,
#  scrape interval s: 30 on agents, 300 via ACM)
SCHEDULE = [
    ("team-a", "llm-finetune-0", "gpu-a100-node-1", "GPU-aaaa", "", 1.0, True, 1.0, 2.0, 0.9, 40000, 300.0, 30),
    ("team-a", "notebook-0", "gpu-a100-node-1", "GPU-bbbb", "", 1.0, True, 3.0, 0.5, 0.0, 500, 60.0, 30),
    ("team-b", "jupyter-alice-0", "gpu-a100-node-2", "GPU-cccc/1", "3g.40gb", 3 / 7, True, 2.0, 1.0, 0.5, 20000, None,
     300),
    ("", "", "gpu-a100-node-2", "GPU-dddd", "", 1.0, False, 0.0, 6.0, 0.0, 0, 60.0, 30),
]
TEMP_C = {"GPU-aaaa": 75.0, "GPU-bbbb": 40.0, "GPU-dddd": 35.0}  # whole GPUs only
XID = {"GPU-bbbb": (10, 79)}  # hw.id: (sample index, XID code); every other sample reports 0
ENERGY_KWH = {"gpu-a100-node-1": (2 * 300 + 0.5 * 60) / 1000, "gpu-a100-node-2": 6 * 60 / 1000}
EXPECTED = {  # GPU-hours: whole GPU 1/h, slice its fraction per hour; used = weighted by busy
    "team-a": {"allocated": 2.5, "used": 1.8, "idle": 0.5, "held": 2, "idle_sessions_h": 0.5},
    "team-b": {"allocated": 3 / 7, "used": 3 / 7 * 0.5, "idle": 0.0, "held": 1, "idle_sessions_h": 0.0},
}


def attr(k, v):
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, float):
        return {"key": k, "value": {"doubleValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def otlp_metrics():
    docs = []
    for ns, pod, node, hwid, prof, frac, alloc, start_h, hours, busy, fb, power, step in SCHEDULE:
        res = {"service.name": "dcgm-exporter", "k8s.cluster.name": "nerc-ocp-prod", "k8s.node.name": node,
               "aitelemetry.hub.name": "moc",
               "aitelemetry.keycloak.resource": "HUB-moc-CLUSTER-nerc-ocp-prod" + ("-PROJECT-" + ns if ns else "")}
        if ns:
            res.update({"k8s.namespace.name": ns, "k8s.pod.name": pod, "aitelemetry.project.name": "Project " + ns,
                        "aitelemetry.project.pi": ns + "-pi@example.edu"})
        pattrs = {"hw.id": hwid, "hw.type": "gpu", "hw.vendor": "NVIDIA", "hw.model": A100,
                  "aitelemetry.gpu.allocated": alloc, "aitelemetry.gpu.slice.fraction": float(frac)}
        if prof:
            pattrs.update({"nvidia.mig.profile": prof, "nvidia.mig.gpu_instance_id": hwid.split("/")[1],
                           "hw.parent": hwid.split("/")[0]})
        t0 = FROM + dt.timedelta(hours=start_h)
        n = int(round(hours * 3600 / step))
        times = [t0 + dt.timedelta(seconds=i * step) for i in range(n)]
        fields = {"DCGM_FI_DEV_FB_USED": float(fb), "DCGM_FI_DEV_FB_FREE": 81920.0 - fb}
        if power is not None:
            fields["DCGM_FI_DEV_POWER_USAGE"] = power
        if hwid in TEMP_C:
            fields["DCGM_FI_DEV_GPU_TEMP"] = TEMP_C[hwid]
            fields["DCGM_FI_DEV_XID_ERRORS"] = [0.0] * n
            if hwid in XID:
                fields["DCGM_FI_DEV_XID_ERRORS"][XID[hwid][0]] = float(XID[hwid][1])
        if prof:
            fields["DCGM_FI_PROF_GR_ENGINE_ACTIVE"] = busy
        else:
            fields["DCGM_FI_DEV_GPU_UTIL"] = float(round(busy * 100))
        metrics = [{"name": name, "gauge": {"dataPoints": [
            {"attributes": [attr(k, v) for k, v in pattrs.items()],
             "timeUnixNano": str(int(t.timestamp()) * 10**9), "asDouble": val[i] if isinstance(val, list) else val}
            for i, t in enumerate(times)]}}
            for name, val in fields.items()]
        docs.append({"resourceMetrics": [{"resource": {"attributes": [attr(k, v) for k, v in res.items()]},
                                          "scopeMetrics": [{"scope": {"name": "gpumodel"}, "metrics": metrics}]}]})
    return docs


SESSIONS = [  # (span name, namespace, pod, hw.id, mig profile, start hour, hours)
    ("gpu.usage", "team-a", "llm-finetune-0", "GPU-aaaa", "", 1.0, 2.0),
    ("gpu.idle", "team-a", "notebook-0", "GPU-bbbb", "", 3.0, 0.5),
    ("gpu.usage", "team-b", "jupyter-alice-0", "GPU-cccc/1", "3g.40gb", 2.0, 1.0),
]


def otlp_traces():
    rs = []
    for i, (name, ns, pod, hwid, prof, start_h, hours) in enumerate(SESSIONS):
        start = int((FROM + dt.timedelta(hours=start_h)).timestamp()) * 10**9
        sattrs = [attr("hw.id", hwid), attr("k8s.namespace.name", ns), attr("k8s.pod.name", pod)]
        if prof:
            sattrs.append(attr("nvidia.mig.profile", prof))
        rs.append({"resource": {"attributes": [attr("service.name", "alertmanager"),
                                               attr("k8s.cluster.name", "nerc-ocp-prod"),
                                               attr("k8s.namespace.name", ns), attr("k8s.pod.name", pod)]},
                   "scopeSpans": [{"scope": {"name": "alertmanagerreceiver"}, "spans": [{
                       "traceId": "%032x" % (0xabc000 + i), "spanId": "%016x" % (0xdef000 + i), "name": name,
                       "kind": 1, "startTimeUnixNano": str(start),
                       "endTimeUnixNano": str(start + int(hours * 3600) * 10**9),
                       "attributes": sattrs, "status": {}}]}]})
    return {"resourceSpans": rs}


# --- OTLP JSON to the exporter's rows ---------------------------------------------

def as_string(v):
    """pcommon.Value.AsString: bool true/false, double strconv 'f' -1, int decimal."""
    (k, x), = v.items()
    if k == "boolValue":
        return "true" if x else "false"
    if k == "doubleValue":
        s = repr(float(x))
        return s[:-2] if s.endswith(".0") else s
    return str(x)


def amap(attrs):
    return {a["key"]: as_string(a["value"]) for a in attrs or []}


def q(s):
    return "'" + str(s).replace("\\", "\\\\").replace("'", "\\'") + "'"


def mlit(m):
    return "map(" + ", ".join("%s, %s" % (q(k), q(v)) for k, v in m.items()) + ")" if m else "map()"


def gauge_rows(doc):
    for r in doc["resourceMetrics"]:
        res = amap(r["resource"]["attributes"])
        for sm in r["scopeMetrics"]:
            for m in sm["metrics"]:
                for p in m["gauge"]["dataPoints"]:
                    ts = int(p["timeUnixNano"]) // 10**9
                    yield "(%s, %s, %s, %s, %s, toDateTime(%d), toDateTime(%d), %r)" % (
                        mlit(res), q(sm["scope"]["name"]), q(res.get("service.name", "")), q(m["name"]),
                        mlit(amap(p.get("attributes"))), ts, ts, float(p["asDouble"]))


def span_rows(doc):
    for r in doc["resourceSpans"]:
        res = amap(r["resource"]["attributes"])
        for ss in r["scopeSpans"]:
            for s in ss["spans"]:
                st, en = int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"])
                yield "(fromUnixTimestamp64Nano(%d), %s, %s, %s, 'Internal', %s, %s, %s, %s, %d, 'Unset')" % (
                    st, q(s["traceId"]), q(s["spanId"]), q(s["name"]), q(res.get("service.name", "")),
                    mlit(res), q(ss["scope"]["name"]), mlit(amap(s.get("attributes"))), en - st)


@pytest.fixture(scope="module")
def db():
    s = chs.Session()
    for stmt in exporter_ddl():
        s.query(stmt)
    for f in sorted(glob.glob(os.path.join(ROOT, "deploy", "clickhouse", "*.sql"))):
        for stmt in split_sql(open(f).read()):
            s.query(stmt)
    for doc in otlp_metrics():
        rows = list(gauge_rows(doc))
        for i in range(0, len(rows), 2000):
            s.query("INSERT INTO default.otel_metrics_gauge (ResourceAttributes, ScopeName, ServiceName, MetricName, "
                    "Attributes, StartTimeUnix, TimeUnix, Value) VALUES " + ", ".join(rows[i:i + 2000]))
    s.query("INSERT INTO default.otel_traces (Timestamp, TraceId, SpanId, SpanName, SpanKind, ServiceName, "
            "ResourceAttributes, ScopeName, SpanAttributes, Duration, StatusCode) VALUES "
            + ", ".join(span_rows(otlp_traces())))
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
    assert {"otel_metrics_gauge", "otel_metrics_sum", "otel_traces", "otel_traces_trace_id_ts", "gpu_samples"} <= tables
    _, rows = query(db, "SELECT count() AS n FROM otel_traces_trace_id_ts")
    assert int(rows[0]["n"]) == len(SESSIONS)  # the exporter's materialized view works on our rows


@pytest.mark.parametrize("name,dash", DASHBOARDS, ids=[n for n, _ in DASHBOARDS])
@pytest.mark.parametrize("project", sorted(EXPECTED))
def test_every_query_runs(db, name, dash, project):
    variables = {"project": project, "hub": "moc", "cluster": "nerc-ocp-prod", "node": "$__all"}
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
    _, rows = run(db, RP, "GPU memory used", project)
    assert rows and all(float(r["fb_used_mib"]) > 0 for r in rows)
    print("%s: %s" % (project, got))


def test_sessions_table_and_tempo_link(db):
    names, rows = run(db, RP, "Usage and idle sessions", "team-a")
    assert "TraceId" in names
    assert [(r["Session"], r["GPU"], float(r["Hours"])) for r in rows] == [
        ("gpu.usage", "GPU-aaaa", 2.0), ("gpu.idle", "GPU-bbbb", 0.5)]
    assert all(re.fullmatch("[0-9a-f]{32}", r["TraceId"]) for r in rows)
    # the timeline: one point per interval a session covers, a 0 where it ends
    _, rows = run(db, RP, "Session timeline", "team-a")
    points = {}
    for r in rows:
        key = (r["gpu"], int(r["state"]))
        points[key] = points.get(key, 0) + 1
    per_hour = 3600 // INTERVAL_S  # 2 h of usage, 30 min idle, one end marker each
    assert points == {("GPU-aaaa", 2): 2 * per_hour, ("GPU-aaaa", 0): 1,
                      ("GPU-bbbb", 1): per_hour // 2, ("GPU-bbbb", 0): 1}, points
    _, rows = run(db, RP, "Usage and idle sessions", "team-b")
    assert [(r["Session"], r["MigProfile"]) for r in rows] == [("gpu.usage", "3g.40gb")]


CM = dict(DASHBOARDS)["cluster-manager.json"]
SCOPE = {"hub": "moc", "cluster": "nerc-ocp-prod", "node": "$__all"}


def test_cluster_manager_variables(db):
    got = {}
    for v in CM["templating"]["list"]:
        if v["type"] == "query":
            names, rows = query(db, expand(v["query"], SCOPE))
            got[v["name"]] = [r[names[0]] for r in rows]
    assert got == {"hub": ["moc"], "cluster": ["nerc-ocp-prod"], "node": ["gpu-a100-node-1", "gpu-a100-node-2"]}


def test_cluster_manager_numbers(db):
    _, rows = run(db, CM, "GPUs and slices in use versus total", **SCOPE)
    assert (int(rows[0]["held"]), int(rows[0]["total"])) == (3, 4)
    total_alloc = sum(e["allocated"] for e in EXPECTED.values())
    assert approx(rows[0]["avg_gpus_held"], total_alloc / 6)
    _, rows = run(db, CM, "Allocation versus use per project and PI", **SCOPE)
    got = {r["namespace"]: r for r in rows}
    assert sorted(got) == sorted(EXPECTED)
    for ns, e in EXPECTED.items():
        assert approx(got[ns]["gpu_hours_allocated"], e["allocated"]), (ns, got[ns])
        assert approx(got[ns]["gpu_hours_used"], e["used"]), (ns, got[ns])
        assert approx(got[ns]["gpu_hours_idle"], e["idle"]), (ns, got[ns])
        assert got[ns]["pi"] == ns + "-pi@example.edu"
    _, rows = run(db, CM, "GPU-hours per PI", **SCOPE)
    got = {r["pi"]: r for r in rows}
    assert sorted(got) == sorted(ns + "-pi@example.edu" for ns in EXPECTED)
    for ns, e in EXPECTED.items():
        assert approx(got[ns + "-pi@example.edu"]["gpu_hours_allocated"], e["allocated"])
        assert approx(got[ns + "-pi@example.edu"]["gpu_hours_used"], e["used"])
    _, rows = run(db, CM, "Top idle allocated pods", **SCOPE)
    assert [(r["namespace"], r["pod"]) for r in rows] == [("team-a", "notebook-0")]
    assert approx(rows[0]["gpu_hours_idle"], 0.5)
    _, rows = run(db, CM, "Energy per node", **SCOPE)
    got = {r["node"]: float(r["energy_kwh"]) for r in rows}
    assert sorted(got) == sorted(ENERGY_KWH)
    for node, kwh in ENERGY_KWH.items():
        assert approx(got[node], kwh), (node, got[node], kwh)
    print("cluster manager: energy kWh %s" % got)
    _, rows = run(db, CM, "GPU temperature and XID errors", **SCOPE)
    assert [(r["hw_id"], int(r["xid_samples"]), int(float(r["last_xid"]))) for r in rows] == [
        ("GPU-bbbb", 1, 79), ("GPU-aaaa", 0, 0), ("GPU-dddd", 0, 0)]
    assert {r["hw_id"]: float(r["temp_c_max"]) for r in rows} == TEMP_C
    _, rows = run(db, CM, "GPU temperature", **SCOPE)
    assert max(float(r["temp_c_max"]) for r in rows) == 75.0
    # a node selected instead of All: only that node's GPUs
    _, rows = run(db, CM, "GPUs and slices in use versus total", hub="moc", cluster="nerc-ocp-prod",
                  node=["gpu-a100-node-2"])
    assert (int(rows[0]["held"]), int(rows[0]["total"])) == (1, 2)
    _, rows = run(db, CM, "Power per node", hub="moc", cluster="nerc-ocp-prod",
                  node=["gpu-a100-node-1", "gpu-a100-node-2"])
    assert {r["node"] for r in rows} == set(ENERGY_KWH)


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
