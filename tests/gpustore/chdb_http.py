"""A ClickHouse HTTP interface in front of chDB, over the recorded fixtures.

The Go integration test (internal/gpustore/clickhouse, -tags integration)
opens the backend with clickhouse-go's HTTP protocol against this server, so
the Go code, clickhouse-go and the .sql files run for real against the real
engine (chDB is ClickHouse in-process). What ClickHouse's HTTP interface does
and this one follows: the query is the `query` URL parameter and/or the POST
body (joined by a newline), `database` selects the database, `param_<name>`
are the query parameters ({name:Type}, text format), other URL parameters
(settings, default_format, client_protocol_version, query_id) are accepted;
errors are HTTP 500 with `X-ClickHouse-Exception-Code` and the exception
text ("Code: N. DB::Exception: ...") as the body; GET /ping answers "Ok.".

Results are Native format as clickhouse-go's HTTP client asks (it sends
client_protocol_version and decodes blocks with block info and a per-column
custom-serialization flag). chDB writes Native for protocol revision 0
(neither), so each block is rewritten: its columns are walked by type and
re-emitted with the block info and a 0 flag; the column data bytes are
chDB's own, untouched, except LowCardinality(String) columns, which are
re-emitted as String (the dictionary looked up per row).

Usage: chdb_http.py [--port 0] [--database otel]; prints "listening on PORT".
"""
import argparse
import http.server
import io
import re
import sys
import threading
import urllib.parse

import fixtures as fx

LOCK = threading.Lock()


def varint(b, i):
    shift = n = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        if c < 0x80:
            return n, i
        shift += 7


def put_varint(n):
    out = bytearray()
    while True:
        c = n & 0x7F
        n >>= 7
        out.append(c | (0x80 if n else 0))
        if not n:
            return bytes(out)


FIXED = {"UInt8": 1, "Bool": 1, "Int8": 1, "UInt16": 2, "Int16": 2, "UInt32": 4, "Int32": 4, "Float32": 4,
         "Date": 2, "DateTime": 4, "UInt64": 8, "Int64": 8, "Float64": 8, "Date32": 4, "UUID": 16}


def split_args(s):
    """Top-level comma-separated type arguments."""
    out, depth, start = [], 0, 0
    for j, c in enumerate(s):
        if c in "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            out.append(s[start:j].strip())
            start = j + 1
    out.append(s[start:].strip())
    return out


def skip(t, b, i, rows):
    """Skip `rows` values of type t in Native (revision 0) data at b[i:]; return the end."""
    t = t.strip()
    m = re.fullmatch(r"(\w+)\((.*)\)", t, re.S)
    base, args = (m.group(1), m.group(2)) if m else (t, "")
    if base in FIXED and not (base == "DateTime" and args):
        return i + FIXED[base] * rows
    if base == "DateTime" or base == "DateTime64":
        return i + (4 if base == "DateTime" else 8) * rows
    if base == "Decimal":
        p = int(split_args(args)[0])
        return i + (4 if p <= 9 else 8 if p <= 18 else 16 if p <= 38 else 32) * rows
    if base == "String":
        for _ in range(rows):
            n, i = varint(b, i)
            i += n
        return i
    if base == "FixedString":
        return i + int(args) * rows
    if base == "Nullable":
        return skip(args, b, i + rows, rows)
    if base == "SimpleAggregateFunction":
        return skip(split_args(args)[1], b, i, rows)
    if base in ("Array", "Map"):
        total = 0
        if rows:
            total = int.from_bytes(b[i + 8 * (rows - 1):i + 8 * rows], "little")
        i += 8 * rows
        if base == "Array":
            return skip(args, b, i, total)
        k, v = split_args(args)
        return skip(v, b, skip(k, b, i, total), total)
    if base == "Tuple":
        for a in split_args(args):
            parts = a.split(" ", 1)
            a = parts[1] if len(parts) == 2 and re.fullmatch(r"\w+", parts[0]) and "(" not in parts[0] \
                and parts[0] not in FIXED and parts[0] not in ("String",) else a
            i = skip(a, b, i, rows)
        return i
    raise ValueError("chdb_http: Native type not supported by the rewriter: " + t)


def low_cardinality(inner, b, i, rows):
    """A LowCardinality(String) column's Native data (serialization version,
    index type and flags, dictionary, indexes) as plain String data."""
    if inner != "String":
        raise ValueError("chdb_http: LowCardinality(%s) not supported by the rewriter" % inner)
    if rows == 0:
        return b"", i
    i += 8  # keys serialization version
    flags = int.from_bytes(b[i:i + 8], "little")
    i += 8
    width = 1 << (flags & 0xFF)  # index type: 0 UInt8, 1 UInt16, 2 UInt32, 3 UInt64
    nkeys = int.from_bytes(b[i:i + 8], "little")
    i += 8
    keys = []
    for _ in range(nkeys):
        start = i
        n, i = varint(b, i)
        i += n
        keys.append(b[start:i])
    n = int.from_bytes(b[i:i + 8], "little")
    i += 8
    assert n == rows, (n, rows)
    out = bytearray()
    for _ in range(rows):
        out += keys[int.from_bytes(b[i:i + width], "little")]
        i += width
    return bytes(out), i


def rewrite(native):
    """chDB's Native (revision 0) to Native with block info and custom-serialization flags."""
    b, i, out = native, 0, io.BytesIO()
    while i < len(b):
        ncols, i = varint(b, i)
        nrows, i = varint(b, i)
        out.write(b"\x01\x00\x02\xff\xff\xff\xff\x00")  # BlockInfo: is_overflows 0, bucket_num -1, end
        out.write(put_varint(ncols) + put_varint(nrows))
        for _ in range(ncols):
            start = i
            n, i = varint(b, i)
            i += n  # name
            n, i = varint(b, i)
            t = b[i:i + n].decode()
            i += n
            if t.startswith("LowCardinality("):
                # re-emitted as its plain type: the dictionary looked up per row
                name_end = varint(b, start)[1] + varint(b, start)[0]
                inner = t[len("LowCardinality("):-1]
                data, i = low_cardinality(inner, b, i, nrows)
                out.write(b[start:name_end] + put_varint(len(inner)) + inner.encode() + b"\x00" + data)
                continue
            out.write(b[start:i] + b"\x00")  # name, type, no custom serialization
            end = skip(t, b, i, nrows)
            out.write(b[i:end])
            i = end
    return out.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    session = None
    default_db = "otel"

    def log_message(self, *a):  # quiet: the Go test prints what fails
        pass

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path in ("/ping", "/"):
            return self.reply(200, b"Ok.\n", "text/plain")
        return self.handle_query(u, b"")

    def do_POST(self):
        u = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        return self.handle_query(u, self.rfile.read(n))

    def handle_query(self, u, body):
        qs = urllib.parse.parse_qs(u.query, keep_blank_values=True)
        sql = "\n".join(x for x in [qs.get("query", [""])[0], body.decode()] if x)
        params = {k[len("param_"):]: v[0] for k, v in qs.items() if k.startswith("param_")}
        db = qs.get("database", [self.default_db])[0]
        try:
            with LOCK:
                self.session.query("USE " + quote_ident(db))
                res = self.session.query(sql, "Native", params=params)
                data = rewrite(res.bytes() if res is not None else b"")
        except Exception as e:  # noqa: BLE001 - every engine error goes back as ClickHouse's
            msg = str(e)
            m = re.search(r"Code: (\d+)\.", msg)
            code = m.group(1) if m else "1001"
            return self.reply(500, (msg.strip() + "\n").encode(), "text/plain; charset=UTF-8",
                              {"X-ClickHouse-Exception-Code": code})
        return self.reply(200, data, "application/octet-stream")

    def reply(self, status, data, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-ClickHouse-Format", "Native")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def quote_ident(name):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError("Code: 81. DB::Exception: Database name is not an identifier")
    return "`" + name + "`"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--database", default="otel")
    a = ap.parse_args()
    s = fx.open_session(a.database)
    s.query("SET session_timezone = 'UTC'")
    Handler.session, Handler.default_db = s, a.database
    srv = http.server.HTTPServer(("127.0.0.1", a.port), Handler)
    print("listening on %d" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
