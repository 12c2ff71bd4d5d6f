#!/usr/bin/env python3
"""caldavsim — a small stand-in for CalendarServer's HTTP side, for the
integration tests: the PROPPATCH that calbridge sends after each batch so
that CalendarServer tells Apple clients (ccs-write-path.md 3, option B).

    caldavsim.py PORT LOG USER:PASSWORD [--dsn DSN] [--fail N]

PORT 0 takes any free port; the port is printed on standard output.

It answers as CalendarServer answers (RFC 4918):
  - 401 with a Basic challenge without valid credentials;
  - 405 for any method but PROPPATCH (nothing else is modelled);
  - 404 for a URL that is not /calendars/__uids__/<owner>/<calendar>/, or,
    with --dsn, for a calendar that owner's home does not hold;
  - 400 for a body that is not a DAV:propertyupdate;
  - 207 Multi-Status, 403 per property for DAV: and CalDAV live properties
    (which a client cannot set), 200 per dead property; then, with --dsn,
    the calendar's MODIFIED bumped as its notifyChanged bumps it.
--fail N answers the first N PROPPATCHes 503 (CalendarServer restarting).
Each request is logged to LOG as one line: STATUS METHOD PATH PROPERTIES.
"""
import base64
import http.server
import subprocess
import sys
import xml.etree.ElementTree as ET

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"


def sql(dsn, query, *args):
    cmd = ["psql", dsn, "-At", "-v", "ON_ERROR_STOP=1"]
    for i, a in enumerate(args):
        cmd += ["-v", "a%d=%s" % (i, a)]
    r = subprocess.run(cmd, input=query, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with open(self.server.log, "a") as f:
            f.write("%d %s %s %s\n" % (status, self.command, self.path,
                                       " ".join(getattr(self, "props", []))))

    def authorised(self):
        h = self.headers.get("Authorization", "")
        if not h.startswith("Basic "):
            return False
        try:
            return base64.b64decode(h[6:]).decode() == self.server.credentials
        except ValueError:
            return False

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_any(self):
        data = self.body()
        if not self.authorised():
            return self.answer(401, headers=[("WWW-Authenticate", 'Basic realm="Test Realm"')])
        if self.command != "PROPPATCH":
            return self.answer(405, headers=[("Allow", "PROPPATCH")])
        parts = self.path.split("/")
        if len(parts) != 6 or parts[:3] != ["", "calendars", "__uids__"] or parts[5] != "" \
                or not parts[3] or not parts[4]:
            return self.answer(404)
        owner, cal = parts[3], parts[4]
        dsn = self.server.dsn
        q = ("SELECT b.CALENDAR_RESOURCE_ID FROM CALENDAR_BIND b JOIN CALENDAR_HOME h"
             " ON h.RESOURCE_ID = b.CALENDAR_HOME_RESOURCE_ID"
             " WHERE h.OWNER_UID = :'a0' AND b.CALENDAR_RESOURCE_NAME = :'a1' AND b.BIND_MODE = 0")
        calid = sql(dsn, q, owner, cal) if dsn else "1"
        if not calid:
            return self.answer(404)
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            return self.answer(400)
        if root.tag != "{DAV:}propertyupdate":
            return self.answer(400)
        props = [p for op in root for pl in op if pl.tag == "{DAV:}prop" for p in pl]
        if not props or any(op.tag not in ("{DAV:}set", "{DAV:}remove") for op in root):
            return self.answer(400)
        self.props = [p.tag for p in props]
        if self.server.fail > 0:
            self.server.fail -= 1
            return self.answer(503, headers=[("Retry-After", "1")])
        stats = []
        for p in props:
            live = p.tag.startswith("{%s}" % DAV) or p.tag.startswith("{%s}" % CALDAV)
            stats.append((p.tag, "HTTP/1.1 403 Forbidden" if live else "HTTP/1.1 200 OK"))
        if dsn and any(s.endswith("200 OK") for _, s in stats):
            sql(dsn, "UPDATE CALENDAR_METADATA SET MODIFIED = timezone('UTC', now())"
                     " WHERE RESOURCE_ID = :'a0'", calid)
        out = ['<?xml version="1.0" encoding="utf-8"?>', '<D:multistatus xmlns:D="DAV:">',
               "<D:response><D:href>%s</D:href>" % self.path]
        for tag, status in stats:
            ns, name = tag[1:].split("}", 1)
            out.append('<D:propstat><D:prop><X:%s xmlns:X="%s"/></D:prop><D:status>%s'
                       "</D:status></D:propstat>" % (name, ns, status))
        out.append("</D:response></D:multistatus>")
        self.answer(207, "\n".join(out).encode(),
                    [("Content-Type", "application/xml; charset=utf-8")])

    do_PROPPATCH = do_GET = do_PUT = do_POST = do_PROPFIND = do_DELETE = do_any


def main():
    a = sys.argv[1:]
    if len(a) < 3:
        sys.exit("usage: caldavsim.py PORT LOG USER:PASSWORD [--dsn DSN] [--fail N]")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(a[0])), Handler)
    srv.log, srv.credentials = a[1], a[2]
    srv.dsn = a[a.index("--dsn") + 1] if "--dsn" in a else None
    srv.fail = int(a[a.index("--fail") + 1]) if "--fail" in a else 0
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
