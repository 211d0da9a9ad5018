"""Per-project access (deploy/clickhouse/policies, cmd/gen-row-policies), enforced by ClickHouse's engine.

chDB is clickhouse-local: it has no writable access storage, so CREATE ROLE and CREATE ROW POLICY are refused,
and a session cannot log in as another user. What it does enforce is a users.xml given through its config file:
the session user's grants, and its row filters, which are permissive row policies. So the generated statements
are applied, in order, to Access below, a model of ClickHouse's access entities that follows ClickHouse's DDL
semantics (CREATE ROLE IF NOT EXISTS; CREATE ROW POLICY fails on an existing policy, IF NOT EXISTS keeps it,
OR REPLACE replaces it; DROP ... IF EXISTS; a policy or grant naming an unknown role fails). The grants of a
Grafana data source's user and the conditions of every policy naming it or its roles then become the users.xml
of a session on the same data, and the engine filters the real tables, views and dashboard queries with them.

The data: the dashboards' fixtures, plus the same rows relabelled to a second cluster (TWIN) with the same
namespaces, plus the fixtures' cluster-level rows (a GPU no pod holds has no namespace)."""
import contextlib
import json
import os
import re
from xml.sax.saxutils import escape

import pytest
from chdb import session as chs

import test_dashboards as td

POLICIES = os.path.join(td.ROOT, "deploy", "clickhouse", "policies", "project-row-policies.example.sql")
CLUSTER = td.SCHEDULE["cluster"]
TWIN = "nerc-ocp-test"
WRITER = "otel"  # the exporter's ClickHouse user (configs/gateway.yaml), named in the all_rows policies
TABLES = {  # the tables the policies cover, and their cluster and namespace expressions
    t: (("cluster", "namespace") if t.startswith("gpu_") else
        ("ResourceAttributes['k8s.cluster.name']", "ResourceAttributes['k8s.namespace.name']"))
    for t in ("otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram",
              "otel_metrics_exponential_histogram", "otel_metrics_summary", "otel_traces",
              "gpu_hours_hourly", "gpu_topology")}
HOLDING = ("otel_metrics_gauge", "otel_traces", "gpu_hours_hourly", "gpu_topology")  # the fixtures fill these


def role(cluster, namespace):
    return "project_%s_%s" % (cluster, namespace)


# --- ClickHouse's access entities ---------------------------------------------------

NAME = r"`((?:[^`]|``)+)`|(\w+)"


def unquote(m, i):
    return m.group(i).replace("``", "`") if m.group(i) is not None else m.group(i + 1)


class Access:
    """Roles, SELECT grants and row policies as ClickHouse keeps them after each statement."""

    def __init__(self, users):
        self.users = set(users)  # created separately (they carry credentials)
        self.roles, self.grants, self.policies, self.granted_roles = set(), {}, {}, {}

    def apply(self, sql):
        for stmt in td.split_sql(sql):
            self.statement(stmt)
        return self

    def known(self, name):
        assert name in self.roles or name in self.users, "UNKNOWN_ROLE: %s" % name

    def statement(self, stmt):
        m = re.fullmatch(r"CREATE ROLE (IF NOT EXISTS |OR REPLACE )?(?:%s)" % NAME, stmt)
        if m:
            name = unquote(m, 2)
            assert m.group(1) or name not in self.roles, "ROLE_ALREADY_EXISTS: %s" % name
            if m.group(1) == "OR REPLACE ":
                self.drop_role(name)
            self.roles.add(name)
            return
        m = re.fullmatch(r"GRANT SELECT ON (?:%s)\.(?:%s) TO (?:%s)" % (NAME, NAME, NAME), stmt)
        if m:
            self.known(unquote(m, 5))
            self.grants.setdefault(unquote(m, 5), set()).add((unquote(m, 1), unquote(m, 3)))
            return
        m = re.fullmatch(r"GRANT (?:%s) TO (?:%s)" % (NAME, NAME), stmt)
        if m:
            self.known(unquote(m, 1))
            self.granted_roles.setdefault(unquote(m, 3), set()).add(unquote(m, 1))
            return
        m = re.fullmatch(r"CREATE ROW POLICY (IF NOT EXISTS |OR REPLACE )?(?:%s) ON (?:%s)\.(?:%s) FOR SELECT "
                         r"USING (.+) TO (.+)" % (NAME, NAME, NAME), stmt, re.S)
        if m:
            key = (unquote(m, 2), unquote(m, 4), unquote(m, 6))
            to = [re.fullmatch(NAME, x.strip()) for x in m.group(9).split(",")]
            to = [unquote(x, 1) for x in to]
            for name in to:
                self.known(name)
            if key in self.policies:
                assert m.group(1), "ROW_POLICY_ALREADY_EXISTS: %s" % (key,)
                if m.group(1) == "IF NOT EXISTS ":
                    return  # the existing policy stays as it was
            self.policies[key] = (m.group(8), set(to))
            return
        m = re.fullmatch(r"DROP ROW POLICY IF EXISTS (?:%s) ON (?:%s)\.(?:%s)" % (NAME, NAME, NAME), stmt)
        if m:
            self.policies.pop((unquote(m, 1), unquote(m, 3), unquote(m, 5)), None)
            return
        m = re.fullmatch(r"DROP ROLE IF EXISTS (?:%s)" % NAME, stmt)
        if m:
            self.drop_role(unquote(m, 1))
            return
        raise AssertionError("a statement the model does not know: " + stmt)

    def drop_role(self, name):
        """Dropping a role revokes it from everyone and removes it from every policy's TO list."""
        self.roles.discard(name)
        self.grants.pop(name, None)
        for holders in self.granted_roles.values():
            holders.discard(name)
        for cond, to in self.policies.values():
            to.discard(name)

    def users_xml(self, user, database="default"):
        """The users.xml that gives chDB's session user what `user` has: the SELECT grants of its roles,
        and on each table the OR of every policy naming the user or one of its roles. A granted table
        no policy names for it has no filter: every row, as with users_without_row_policies_can_read_rows
        (true in ClickHouse's shipped config), the case a missing project policy would fall into."""
        names = {user} | self.granted_roles.get(user, set())
        grants = set().union(*(self.grants.get(n, set()) for n in names))
        conds = {}
        for (_, db, table), (cond, to) in sorted(self.policies.items()):
            if names & to:
                conds.setdefault((db, table), []).append("(%s)" % cond)
        assert {db for db, _ in conds} <= {database}
        filters = "".join("<%s><filter>%s</filter></%s>" % (t, escape(" OR ".join(c)), t)
                          for (_, t), c in sorted(conds.items()))
        return ("<clickhouse><profiles><default/><reader><readonly>1</readonly></reader></profiles>"
                "<quotas><default/></quotas><users><default><password/><profile>reader</profile>"
                "<quota>default</quota><grants>%s</grants><databases><%s>%s</%s></databases></default>"
                "</users></clickhouse>") % (
            "".join("<query>GRANT SELECT ON %s.%s</query>" % g for g in sorted(grants)), database, filters, database)


ADMIN = ("<clickhouse><profiles><default/></profiles><quotas><default/></quotas><users><default><password/>"
         "<profile>default</profile><quota>default</quota><access_management>1</access_management></default>"
         "</users></clickhouse>")


class Engine:
    """One chDB session on a data path, reopened with another users.xml to act as another user."""

    def __init__(self, path):
        self.path, self.session, self.n = path, None, 0
        self.open(ADMIN)

    def open(self, users_xml):
        self.n += 1
        users = os.path.join(self.path, "users-%d.xml" % self.n)
        config = os.path.join(self.path, "config-%d.xml" % self.n)
        with open(users, "w") as f:
            f.write(users_xml)
        with open(config, "w") as f:
            f.write("<clickhouse><users_config>%s</users_config></clickhouse>" % users)
        self.session = chs.Session(os.path.join(self.path, "data") + "?config-file=" + config)

    def query(self, sql, fmt="CSV"):
        return self.session.query(sql, fmt)

    @contextlib.contextmanager
    def user(self, users_xml):
        self.session.close()
        self.open(users_xml)
        try:
            yield self
        finally:
            self.session.close()
            self.open(ADMIN)

    def close(self):
        self.session.close()


def relabel(doc):
    """A document of the fixtures as the same pipeline on the twin cluster would write it."""
    return json.loads(json.dumps(doc).replace('"%s' % CLUSTER, '"%s' % TWIN)
                      .replace("CLUSTER-%s" % CLUSTER, "CLUSTER-%s" % TWIN).replace(":%s:" % CLUSTER, ":%s:" % TWIN))


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    e = Engine(str(tmp_path_factory.mktemp("chdb-policies")))
    for stmt in td.exporter_ddl():
        e.query(stmt)
    for f in sorted(td.glob.glob(os.path.join(td.ROOT, "deploy", "clickhouse", "*.sql"))):
        for stmt in td.split_sql(open(f).read()):
            e.query(stmt)
    metrics, traces = td.fixture_lines("metrics.jsonl.gz"), td.fixture_lines("traces.jsonl")
    gauges = [row for doc in metrics + [relabel(d) for d in metrics] for row in td.gauge_rows(doc)]
    spans = [row for doc in traces + [relabel(d) for d in traces] for row in td.span_rows(doc)]
    td.load(e, "metrics_gauge_insert.sql", "otel_metrics_gauge", gauges)
    td.load(e, "traces_insert.sql", "otel_traces", spans)
    yield e
    e.close()


def grafana_user(access, *roles):
    """A project's Grafana data source user, created and granted its roles as docs/dashboards.md says."""
    user = "grafana_" + "_".join(roles)
    access.users.add(user)
    for r in roles:
        access.statement("GRANT `%s` TO `%s`" % (r, user))
    return user


def visible(db, access, user, cluster, namespace):
    """Per table, (rows the user sees, of them not of namespace on cluster, of them with no namespace)."""
    out = {}
    with db.user(access.users_xml(user)):
        for t, (c, n) in TABLES.items():
            _, rows = td.query(db, "SELECT count() AS n, countIf(NOT (%s = %s AND %s = %s)) AS foreign, "
                                   "countIf(%s = '') AS no_ns FROM default.%s" % (
                                       c, td.q(cluster), n, td.q(namespace), n, t))
            out[t] = (int(rows[0]["n"]), int(rows[0]["foreign"]), int(rows[0]["no_ns"]))
    return out


def admin_counts(db, cluster=None, namespace=None):
    out = {}
    for t, (c, n) in TABLES.items():
        where = " AND ".join(["1"] + (["%s = %s" % (c, td.q(cluster))] if cluster is not None else []) +
                             (["%s = %s" % (n, td.q(namespace))] if namespace is not None else []))
        _, rows = td.query(db, "SELECT count() AS n FROM default.%s WHERE %s" % (t, where))
        out[t] = int(rows[0]["n"])
    return out


# --- tests ------------------------------------------------------------------------

def test_every_statement_parses(db):
    stmts = td.split_sql(open(POLICIES).read())
    for stmt in stmts:
        td.query(db, "EXPLAIN AST " + stmt)
    roles = {r for r in Access([WRITER]).apply(open(POLICIES).read()).roles if r.startswith("project_")}
    assert roles == {role(CLUSTER, ns) for ns in td.PI}, roles
    print("row policies: %d statements parsed, project roles %s" % (len(stmts), sorted(roles)))


def test_the_twin_cluster_is_loaded(db):
    """The data the isolation tests stand on: each project's namespace on both clusters, cluster-level rows."""
    for ns in td.EXPECTED:
        prod, twin = admin_counts(db, CLUSTER, ns), admin_counts(db, TWIN, ns)
        for t in HOLDING:
            assert prod[t] > 0 and twin[t] == prod[t], (ns, t, prod[t], twin[t])
    no_ns = admin_counts(db, namespace="")
    assert all(no_ns[t] > 0 for t in ("otel_metrics_gauge", "gpu_hours_hourly", "gpu_topology")), no_ns


@pytest.mark.parametrize("project", sorted(td.EXPECTED))
def test_project_role_sees_only_its_namespace_on_its_cluster(db, project):
    access = Access([WRITER]).apply(open(POLICIES).read())
    user = grafana_user(access, role(CLUSTER, project))
    got = visible(db, access, user, CLUSTER, project)
    want = admin_counts(db, CLUSTER, project)
    for t in TABLES:
        n, foreign, no_ns = got[t]
        # no row of the same-named namespace on the twin cluster, no cluster-level row, no other project's
        assert (foreign, no_ns) == (0, 0), (project, t, got[t])
        assert n == want[t], (project, t, n, want[t])
    assert all(got[t][0] > 0 for t in HOLDING), got
    print("%s sees %s" % (role(CLUSTER, project), {t: v[0] for t, v in got.items()}))


def test_managers_and_writer_see_every_row(db):
    access = Access([WRITER]).apply(open(POLICIES).read())
    manager = grafana_user(access, "grafana_managers")
    everything = admin_counts(db)
    assert {t: v[0] for t, v in visible(db, access, manager, CLUSTER, "team-a").items()} == everything
    assert all(access.policies[("all_rows", "default", t)][1] >= {"grafana_managers", WRITER} for t in TABLES)


def test_a_user_without_a_project_role_sees_nothing(db):
    access = Access([WRITER]).apply(open(POLICIES).read())
    access.users.add("nobody")
    with db.user(access.users_xml("nobody")):
        with pytest.raises(Exception, match="ACCESS_DENIED"):
            td.query(db, "SELECT count() FROM default.gpu_samples")


@pytest.mark.parametrize("name,dash", td.DASHBOARDS, ids=[n for n, _ in td.DASHBOARDS])
def test_dashboards_work_under_a_project_role(db, name, dash):
    """Every query of every dashboard runs under each project's role, and the research project's numbers
    are its schedule's although its namespace holds as many rows again on the twin cluster."""
    for project in sorted(td.EXPECTED):
        access = Access([WRITER]).apply(open(POLICIES).read())
        user = grafana_user(access, role(CLUSTER, project))
        variables = {"project": project, "hub": td.SCHEDULE["hub"], "cluster": CLUSTER, "node": "$__all"}
        queries = [("variable " + v["name"], v["query"]) for v in dash["templating"]["list"] if v["type"] == "query"]
        queries += [("panel %d" % p["id"], sql) for p, sql in td.panel_queries(dash)]
        with db.user(access.users_xml(user)):
            for what, sql in queries:
                try:
                    td.query(db, td.expand(sql, variables))
                except Exception as e:  # noqa: BLE001
                    pytest.fail("%s %s under %s: %s" % (name, what, user, e))
            if dash is td.RP:
                (v,) = [v for v in dash["templating"]["list"] if v["name"] == "project"]
                names, rows = td.query(db, td.expand(v["query"], {}))
                assert [r[names[0]] for r in rows] == [project], "the project variable offers its project only"
                _, rows = td.run(db, td.RP, "GPU-hours allocated", project)
                assert td.approx(rows[0]["gpu_hours_allocated"], td.EXPECTED[project]["allocated"]), rows
        if dash is td.RP:
            # the same panel with every row: twice the schedule, so the policy is what keeps the twin out
            _, rows = td.run(db, td.RP, "GPU-hours allocated", project)
            assert td.approx(rows[0]["gpu_hours_allocated"], 2 * td.EXPECTED[project]["allocated"]), rows


def namespace_only(sql):
    """The same statements with each project policy's condition on the namespace alone, as before the fix."""
    return re.sub(r"(?:ResourceAttributes\['k8s\.cluster\.name'\]|cluster) = '[^']*' AND ", "", sql)


@pytest.mark.parametrize("earlier", ["same names, namespace-only conditions", "roles named by namespace only"])
def test_reapplying_changed_policies_changes_what_is_seen(db, earlier):
    """Policies applied before, then the current file applied over them: what the role sees follows the
    current file. With CREATE ROW POLICY IF NOT EXISTS, the earlier condition would have stayed."""
    current = open(POLICIES).read()
    project = "team-a"
    if earlier.startswith("same names"):
        before = namespace_only(current)
        roles = [role(CLUSTER, project)]
    else:
        # what earlier versions of cmd/gen-row-policies wrote: role and policy project_{namespace}
        r = "project_" + project
        before = "CREATE ROLE IF NOT EXISTS `%s`;\n" % r + "".join(
            "GRANT SELECT ON `default`.`%s` TO `%s`;\nCREATE ROW POLICY IF NOT EXISTS `%s` ON `default`.`%s` "
            "FOR SELECT USING %s = '%s' TO `%s`;\n" % (t, r, r, t, n, project, r) for t, (_, n) in TABLES.items())
        roles = [r]
    access = Access([WRITER]).apply(before)
    user = grafana_user(access, *roles)
    got = visible(db, access, user, CLUSTER, project)
    assert got["gpu_topology"][0] == admin_counts(db, namespace=project)["gpu_topology"], \
        "the earlier policies show the twin cluster's %s" % project
    access.apply(current)
    if earlier.startswith("same names"):
        got = visible(db, access, user, CLUSTER, project)
        assert {t: v[0] for t, v in got.items()} == admin_counts(db, CLUSTER, project), got
        assert all(v[1] == 0 for v in got.values()), got
    else:
        # the namespace-only role is dropped: its user reads nothing until granted the new role
        assert not access.granted_roles[user]
        with db.user(access.users_xml(user)):
            for t in TABLES:
                with pytest.raises(Exception, match="ACCESS_DENIED"):
                    td.query(db, "SELECT count() FROM default.%s" % t)


def test_every_table_a_dashboard_reads_is_covered():
    """gpu_samples is a view: it reads otel_metrics_gauge with the reader's rights."""
    access = Access([WRITER]).apply(open(POLICIES).read())
    r = role(CLUSTER, sorted(td.PI)[0])
    covered = {t for (name, _, t), _ in access.policies.items() if name == r}
    assert covered == set(TABLES)
    read = set()
    for _, dash in td.DASHBOARDS:
        sqls = [v["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
        sqls += [sql for _, sql in td.panel_queries(dash)]
        for sql in sqls:
            read |= set(re.findall(r"\bFROM\s+(?:default\.)?([a-z_]+)", sql))
    read -= {"iv"}  # the queries' own CTE
    assert read - covered == {"gpu_samples"}, read - covered
    assert ("default", "gpu_samples") in access.grants[r]
