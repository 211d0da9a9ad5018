"""The ClickHouse backend's world in chDB: the clickhouse exporter's tables and
deploy/clickhouse's objects, loaded with the dashboards' recorded fixtures.

Everything is imported from tests/dashboards/test_dashboards.py (the exporter's
DDL from the pinned module, the row conversion, the schedule's ground truth),
not copied, so both tests read the same rows the same way.
"""
import glob
import os
import re
import sys

from chdb import session as chs

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "dashboards"))

import test_dashboards as dash  # noqa: E402

SQL_DIR = os.path.join(ROOT, "internal", "gpustore", "clickhouse", "sql")


def open_session(database="otel", s=None):
    """A chDB session with the exporter's tables and deploy/clickhouse in
    `database` (the gateway's CLICKHOUSE_DATABASE), applied the way
    docs/dashboards.md says: `clickhouse-client --database <db>` with the
    unqualified deploy SQL. Each span is loaded twice, as from two gateway
    replicas (the dashboards test does the same)."""
    s = s or chs.Session()
    s.query("CREATE DATABASE IF NOT EXISTS %s" % database)
    s.query("USE %s" % database)
    for stmt in dash.exporter_ddl():
        # the exporter qualifies its DDL with its configured database
        s.query(stmt.replace('"default".', '"%s".' % database).replace("`default`.", "`%s`." % database)
                .replace(" default.", " %s." % database))
    for f in sorted(glob.glob(os.path.join(ROOT, "deploy", "clickhouse", "*.sql"))):
        for stmt in dash.split_sql(open(f).read()):
            s.query(stmt)
    gauges = [row for doc in dash.fixture_lines("metrics.jsonl.gz") for row in dash.gauge_rows(doc)]
    spans = [row for doc in dash.fixture_lines("traces.jsonl") for row in dash.span_rows(doc)]
    load(s, "metrics_gauge_insert.sql", "otel_metrics_gauge", gauges, database)
    load(s, "traces_insert.sql", "otel_traces", spans + spans, database)
    return s


def load(s, template, table, rows, database):
    head, ncols = dash.insert_sql(template, table)
    head = head.replace('"default".', '"%s".' % database).replace("`default`.", "`%s`." % database) \
        .replace(" default.", " %s." % database)
    for i in range(0, len(rows), 2000):
        batch = rows[i:i + 2000]
        assert all(len(r) == ncols for r in batch)
        s.query(head + "VALUES " + ", ".join("(" + ", ".join(r) + ")" for r in batch))


def sql_files():
    return sorted(os.path.basename(f) for f in glob.glob(os.path.join(SQL_DIR, "*.sql")))


def read_sql(name):
    return open(os.path.join(SQL_DIR, name)).read()


def param_names(sql):
    """The {name:Type} parameters a query uses (comments excluded)."""
    body = "\n".join(l.split("--")[0] for l in sql.splitlines())
    return set(re.findall(r"\{(\w+):", body))
