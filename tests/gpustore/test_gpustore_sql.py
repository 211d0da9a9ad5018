"""The ClickHouse backend's queries (internal/gpustore/clickhouse/sql/*.sql) in
chDB, the real ClickHouse engine, on the exporter's tables and deploy/clickhouse,
loaded with the dashboards' recorded fixtures; numbers checked against the
schedule's ground truth (tests/dashboards/testdata/schedule.json) within 1%.

Parameters go to chDB as ClickHouse query parameters (Session.query(sql, fmt,
params={name: value}), values in ClickHouse's text format as the HTTP
interface's param_<name>), never into the SQL text.
"""
import datetime as dt
import json

import pytest

import fixtures as fx

dash = fx.dash
S = dash.SCHEDULE
FROM, TO = dash.FROM, dash.TO
HUB, CLUSTER = S["hub"], S["cluster"]
BUSY_THR = S["alerts"]["busy_threshold"]
HOSTILE = "x' OR 1=1 --"


def ts(t):
    return t.strftime("%Y-%m-%d %H:%M:%S.%f") + "000"


def arr(xs):
    """A ClickHouse text-format array of strings or tuples of strings."""
    def lit(v):
        return "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return "[" + ", ".join("(" + ", ".join(lit(y) for y in x) + ")" if isinstance(x, tuple) else lit(x)
                           for x in xs) + "]"


def at(v):
    """A DateTime or DateTime64 value of a JSON result (fractional digits vary by type) as a datetime."""
    return dt.datetime.fromisoformat(v[:26] if "." in v else v).replace(tzinfo=dt.timezone.utc)


def params(sql, scope="all", hubs=(), clusters=(), projects=(), window=(FROM, TO), keys=(), step="",
           limit=1000, offset=0, bucket_s=900, now=None, **filters):
    p = {
        "all": "true" if scope == "all" else "false",
        "hubs": arr(hubs), "clusters": arr(clusters), "projects": arr(projects),
        "windowed": "true" if window else "false",
        "from": ts(window[0] if window else dt.datetime(1970, 1, 1)),
        "to": ts(window[1] if window else dt.datetime(1970, 1, 1)),
        "keys": arr(keys), "step": step, "limit": str(limit), "offset": str(offset),
        "lone_s": "30", "cap_s": "900", "idle_busy": repr(BUSY_THR), "bucket_s": str(bucket_s),
        "now": ts(now or TO + dt.timedelta(hours=1)),
    }
    for k in ("hub", "cluster", "node", "namespace", "device"):
        p["f_" + k] = filters.pop(k, "")
    assert not filters, filters
    used = fx.param_names(sql)
    assert used <= set(p), used - set(p)
    return {k: v for k, v in p.items() if k in used}


@pytest.fixture(scope="module")
def db():
    s = fx.open_session("otel")
    yield s
    s.close()


def run(db, name, **kw):
    sql = fx.read_sql(name)
    r = db.query(sql, "JSON", params=params(sql, **kw))
    return json.loads(r.bytes() or b'{"data":[]}')["data"]


def close(x, want, rel=0.01):
    return abs(float(x) - want) <= max(rel * abs(want), 1e-6)


E = dash.EXPECTED


@pytest.mark.parametrize("name", fx.sql_files())
def test_every_query_runs_and_zero_scope_sees_nothing(db, name):
    assert run(db, name) or name in ("idle_now.sql",)  # nothing is held at the fixtures' last sample
    assert run(db, name, scope="none") == []
    # hostile values stay data: a project or filter with SQL in it matches nothing
    assert run(db, name, scope="none", projects=[(HUB, CLUSTER, HOSTILE)]) == []
    assert run(db, name, namespace=HOSTILE) == []


@pytest.mark.parametrize("name", ["gpu_hours_raw.sql", "gpu_hours_rollup.sql"])
def test_gpu_hours_by_project(db, name):
    rows = run(db, name, keys=["project"])
    got = {r["k_project"]: r for r in rows}
    assert sorted(got) == sorted(E)
    for ns, e in E.items():
        r = got[ns]
        assert (r["k_hub"], r["k_cluster"]) == (HUB, CLUSTER)
        for k in ("allocated", "used", "idle"):
            assert close(r[k], e[k]), (name, ns, k, r[k], e[k])
        assert int(r["devices"]) == e["held"]
        print("%s %s: allocated %.6f used %.6f idle %.6f (schedule %.6f %.6f %.6f)" % (
            name, ns, r["allocated"], r["used"], r["idle"], e["allocated"], e["used"], e["idle"]))


def test_raw_keys_add_up(db):
    (total,) = run(db, "gpu_hours_raw.sql")
    assert close(total["allocated"], sum(e["allocated"] for e in E.values()))
    assert (at(total["start"]), at(total["end"])) == (FROM, TO)
    for keys in (["device"], ["pi"], ["cluster", "node"], ["model", "profile"]):
        rows = run(db, "gpu_hours_raw.sql", keys=keys)
        assert close(sum(r["allocated"] for r in rows), total["allocated"]), keys
        assert close(sum(r["used"] for r in rows), total["used"]), keys
    by_pi = {r["k_pi"]: r["allocated"] for r in run(db, "gpu_hours_raw.sql", keys=["pi"])}
    assert by_pi.keys() == {dash.PI[ns] for ns in E}
    for ns, e in E.items():
        assert close(by_pi[dash.PI[ns]], e["allocated"])
    by_dev = {r["k_device"]: r["allocated"] for r in run(db, "gpu_hours_raw.sql", keys=["device"])}
    want = {}
    for a in S["allocations"]:
        want[a["device"]] = want.get(a["device"], 0) + dash.fraction(a["device"]) * a["hours"]
    assert by_dev.keys() == want.keys()
    for d, h in want.items():
        assert close(by_dev[d], h), (d, by_dev[d], h)


@pytest.mark.parametrize("name", ["gpu_hours_raw.sql", "gpu_hours_rollup.sql"])
def test_steps(db, name):
    rows = run(db, name, keys=["project"], step="day")
    assert {(at(r["start"]), at(r["end"])) for r in rows} == {(FROM, TO)}  # one day, clipped to the window
    rows = run(db, name, keys=["project"], step="month",
               window=(FROM - dt.timedelta(days=2), TO))
    assert {at(r["start"]) for r in rows} == {FROM}  # 2026-11-01 starts a month
    for r in rows:
        assert close(r["allocated"], E[r["k_project"]]["allocated"])


@pytest.mark.parametrize("name", ["gpu_hours_raw.sql", "gpu_hours_rollup.sql", "idle_window.sql",
                                  "sessions.sql", "devices.sql", "projects.sql", "utilization.sql"])
def test_project_scope_sees_only_its_rows(db, name):
    only_a = dict(scope="none", projects=[(HUB, CLUSTER, "team-a")])
    rows = run(db, name, **only_a, **({"keys": ["project"]} if name.startswith("gpu_hours") else {}))
    assert rows
    for r in rows:
        for col in ("k_project", "namespace", "holder_namespace"):
            if col in r and r[col]:
                assert r[col] == "team-a", (name, r)
    if name.startswith("gpu_hours"):
        (r,) = rows
        assert close(r["allocated"], E["team-a"]["allocated"])
    # the same namespace on another cluster or hub is another project
    assert run(db, name, scope="none", projects=[(HUB, "other-cluster", "team-a")]) == []
    assert run(db, name, scope="none", projects=[("other-hub", CLUSTER, "team-a")]) == []
    # a cluster or hub in scope sees it
    assert run(db, name, scope="none", clusters=[(HUB, CLUSTER)])
    assert run(db, name, scope="none", hubs=[HUB])


def test_filters_and_pages(db):
    rows = run(db, "gpu_hours_raw.sql", keys=["device"], namespace="team-b")
    assert [r["k_device"] for r in rows] == [a["device"] for a in S["allocations"] if a["namespace"] == "team-b"]
    mig_gpu = [d["uuid"] for d in S["devices"] if d.get("mig_profile")][0]
    rows = run(db, "gpu_hours_raw.sql", keys=["device"], device=mig_gpu)  # a GPU's UUID includes its slices
    assert [r["k_device"] for r in rows] == [mig_gpu + "/1"]
    all_ = run(db, "gpu_hours_raw.sql", keys=["device"])
    assert run(db, "gpu_hours_raw.sql", keys=["device"], limit=1, offset=1) == all_[1:2]


def test_sessions(db):
    rows = run(db, "sessions.sql")
    want = dash.sessions()
    assert [(r["kind"], r["device"], r["namespace"], r["pod"]) for r in rows] == [
        (x["span"], x["device"], x["namespace"], x["pod"]) for x in want]
    assert len({(r["trace_id"], r["span_id"]) for r in rows}) == len(rows)  # each once, though stored twice
    for r, x in zip(rows, want):
        start = FROM + dt.timedelta(hours=x["start_h"])
        assert at(r["start"]) == start and r["closed"] == 1
        assert at(r["end_time"]) == start + dt.timedelta(hours=x["hours"])
        assert close(r["fraction"], dash.fraction(x["device"]))
        assert r["busy"] is not None and close(r["busy"], x["busy"], rel=0.02) or (x["busy"] == 0 and r["busy"] == 0)
    # a window overlapping only the second hour
    rows = run(db, "sessions.sql", window=(FROM + dt.timedelta(hours=1, minutes=10), FROM + dt.timedelta(hours=1, minutes=20)))
    assert [r["pod"] for r in rows] == [x["pod"] for x in want if x["start_h"] <= 1.2 < x["start_h"] + x["hours"]]


def test_open_session(db):
    """A start span whose final span is absent is an open session running to now."""
    s = fx.open_session("opentest", s=db)
    try:
        db.query("ALTER TABLE opentest.otel_traces DELETE WHERE SpanName = 'gpu.usage' "
                 "AND SpanAttributes['k8s.pod.name'] = 'llm-finetune-0' SETTINGS mutations_sync = 1")
        db.query("USE opentest")
        now = FROM + dt.timedelta(hours=2)
        rows = run(db, "sessions.sql", now=now, window=None)
        (o,) = [r for r in rows if r["pod"] == "llm-finetune-0"]
        assert (o["kind"], o["closed"], at(o["end_time"])) == ("gpu.usage", 0, now)
        assert at(o["start"]) == FROM + dt.timedelta(hours=1)
        assert close(o["busy"], 0.9)
        assert len(rows) == len(dash.sessions())
    finally:
        db.query("USE otel")
        db.query("DROP DATABASE opentest")
    del s


def test_devices_and_slices(db):
    devs = run(db, "devices.sql", window=None)
    whole = {d["uuid"] for d in S["devices"]}
    assert sorted(r["id"] for r in devs) == sorted(whole)
    for r in devs:
        d = [x for x in S["devices"] if x["uuid"] == r["id"]]
        assert r["mig"] == any(x.get("mig_profile") for x in d)
        assert int(r["slices"]) == sum(1 for x in d if x.get("mig_profile"))
        assert r["node"] == dash.NODE_OF[d[0]["source"]] and r["model"] == d[0]["model"]
        assert r["gpu_index"] == str(d[0]["gpu"])
        assert int(r["state_rank"]) == 1 and r["holder_pod"] == ""  # nothing is held at the end
        assert at(r["last_seen"]) >= TO - dt.timedelta(minutes=5)
    sl = run(db, "slices.sql", window=None)
    assert sorted(r["id"] for r in sl) == sorted(h for h, d in dash.DEVICES.items() if d.get("mig_profile"))
    for r in sl:
        assert close(r["fraction"], dash.fraction(r["id"])) and r["parent"] == r["id"].split("/")[0]
        assert r["profile"] == dash.DEVICES[r["id"]]["mig_profile"]
    # in a window ending in the middle of the first allocation, its GPU is in use by its pod
    a = S["allocations"][0]
    win = (FROM, FROM + dt.timedelta(hours=a["start_h"] + a["hours"] / 2))
    (r,) = [r for r in run(db, "devices.sql", window=win) if r["id"] == a["device"]]
    assert (int(r["state_rank"]), r["holder_namespace"], r["holder_pod"]) == (3, a["namespace"], a["pod"])
    # an XID in the last sample of the window is an error
    x = S["xid_errors"][0]
    t = FROM + dt.timedelta(hours=x["at_h"])
    (r,) = [r for r in run(db, "devices.sql", window=(FROM, t + dt.timedelta(seconds=1))) if r["id"] == x["device"]]
    assert (int(r["state_rank"]), int(r["last_xid"])) == (4, x["code"])


def test_entities(db):
    (h,) = run(db, "hubs.sql", window=None)
    assert (h["hub"], int(h["clusters"]), int(h["gpus"])) == (HUB, 1, len({d["uuid"] for d in S["devices"]}))
    (c,) = run(db, "clusters.sql", window=None)
    assert (int(c["nodes"]), int(c["slices"])) == (2, 2)
    nodes = run(db, "nodes.sql", window=None)
    assert [n["node"] for n in nodes] == sorted(dash.NODE_OF.values())
    assert all(n["models"] == ["NVIDIA A100-SXM4-80GB"] for n in nodes)
    # team-a's members see the hub with only the GPUs team-a's pods held
    (h,) = run(db, "hubs.sql", window=None, scope="none", projects=[(HUB, CLUSTER, "team-a")])
    assert int(h["gpus"]) == len({a["device"] for a in S["allocations"] if a["namespace"] == "team-a"})


def test_projects(db):
    rows = run(db, "projects.sql", window=None)
    assert [r["namespace"] for r in rows] == sorted(E)
    meta = {"team-a": ("1342", "alice@example.edu", 4.0), "team-b": ("1408", "bob@example.edu", 2.0)}
    for r in rows:
        assert (r["id"], r["pi"], r["gpu_allocation"]) == meta[r["namespace"]]
        assert r["gpu_quota"] is None and r["name"] and r["field_of_science"]


def test_idle(db):
    rows = run(db, "idle_window.sql")
    idle = [a for a in S["allocations"] if a["busy"] < BUSY_THR]
    assert [(r["namespace"], r["pod"], r["device"]) for r in rows] == [(a["namespace"], a["pod"], a["device"]) for a in idle]
    for r, a in zip(rows, idle):
        assert close(r["idle_hours"], dash.fraction(a["device"]) * a["hours"])
        assert at(r["since"]) == FROM + dt.timedelta(hours=a["start_h"])
    assert run(db, "idle_now.sql", window=None) == []  # nothing is held at the fixtures' last sample


def test_utilization(db):
    a = S["allocations"][0]
    rows = run(db, "utilization.sql", device=a["device"], bucket_s=900)
    assert len(rows) == 24
    for i, r in enumerate(rows):
        t = FROM + dt.timedelta(seconds=900 * i)
        assert at(r["time"]) == t and int(r["samples"]) == 30
        held = a["start_h"] * 3600 <= 900 * i < (a["start_h"] + a["hours"]) * 3600
        assert close(r["busy"], a["busy"] if held else 0)
        if held:
            assert close(r["fb_used_mib"], a["fb_used_mib"]) and close(r["power_w"], a["power_w"])


def test_idle_now(db):
    """Idle now: the data cut while team-a's notebook-0 holds its GPU idle (the
    schedule's idle allocation); its last sample is held and idle, the run
    started with the allocation."""
    (a,) = [a for a in S["allocations"] if a["busy"] < BUSY_THR]
    start = FROM + dt.timedelta(hours=a["start_h"])
    cut = start + dt.timedelta(minutes=15)
    fx.open_session("idlenow", s=db)
    try:
        db.query("ALTER TABLE idlenow.otel_metrics_gauge DELETE WHERE TimeUnix >= %s SETTINGS mutations_sync = 1"
                 % "toDateTime64('%s', 9, 'UTC')" % cut.strftime("%Y-%m-%d %H:%M:%S"))
        db.query("USE idlenow")
        # the topology as a backfill after the cut (docs/dashboards.md), since the view saw every row
        db.query("TRUNCATE TABLE gpu_topology")
        db.query("INSERT INTO gpu_topology " + dash.view_select("gpu_topology_mv"))
        rows = run(db, "idle_now.sql", window=None)
        assert [(r["namespace"], r["pod"], r["device"]) for r in rows] == [(a["namespace"], a["pod"], a["device"])]
        (r,) = rows
        last = cut - dt.timedelta(seconds=30)  # node 1 is scraped every 30 s
        assert (at(r["since"]), at(r["last_seen"])) == (start, last)
        assert close(r["idle_hours"], (last - start).total_seconds() / 3600)
        assert run(db, "idle_now.sql", window=None, scope="none", projects=[(HUB, CLUSTER, "team-b")]) == []
    finally:
        db.query("USE otel")
        db.query("DROP DATABASE idlenow")


def test_rollup_lone_sample(db):
    """A series-hour with one sample takes the largest interval of its node's
    series-hours in that same hour (node 2 is scraped every 300 s), else 30 s
    (an hour without other series on the node): per hour, whatever the window,
    as the embedded backend (gpustore.KeyProject's contract). The fixtures'
    allocations end on the hour, so they have no lone series-hour."""
    node2 = [x for x in S["sources"] if x["dialect"] == "federated"][0]
    slice_id = S["allocations"][2]["device"]
    fx.open_session("lonetest", s=db)
    try:
        db.query("USE lonetest")
        for hour, t in (("2026-11-01 04:00:00", "2026-11-01 04:10:00"), ("2026-11-01 07:00:00", "2026-11-01 07:10:00")):
            db.query("INSERT INTO gpu_hours_hourly (hour, hub, cluster, node, namespace, pod, hw_id, allocated, "
                     "project_name, project_pi, hw_model, mig_profile, fraction, samples, first_seen, last_seen, "
                     "prof_sum, prof_n, util_sum, util_n) VALUES "
                     "(%s, %s, %s, %s, 'team-b', 'lone-0', %s, 1, '', '', 'NVIDIA A100-SXM4-80GB', '3g.40gb', 1, 1, "
                     "%s, %s, 0.5, 1, 0, 0)" % (
                         "toDateTime('%s', 'UTC')" % hour, arr([HUB])[1:-1], arr([CLUSTER])[1:-1],
                         arr([node2["node"]])[1:-1], arr([slice_id])[1:-1],
                         "toDateTime64('%s', 9, 'UTC')" % t, "toDateTime64('%s', 9, 'UTC')" % t))
        hour = dt.timedelta(hours=1)
        for window, want_s in (((FROM + 4 * hour, FROM + 5 * hour), node2["interval_s"]),
                               ((FROM + 7 * hour, FROM + 8 * hour), 30),
                               ((FROM + 3 * hour, FROM + 8 * hour), node2["interval_s"] + 30)):
            # the manager's view: the node's other series (free GPUs) are seen; a
            # project's scope sees only its own rows, as in raw samples
            rows = run(db, "gpu_hours_rollup.sql", window=window, keys=["project"])
            (r,) = [r for r in rows if r["k_project"] == "team-b"]
            assert close(r["allocated"], want_s / 3600, rel=1e-9), (window, r)
            assert close(r["used"], 0.5 * want_s / 3600, rel=1e-9), (window, r)
    finally:
        db.query("USE otel")
        db.query("DROP DATABASE lonetest")
