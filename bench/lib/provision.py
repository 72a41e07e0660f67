#!/usr/bin/env python3
"""provision.py -- users CSV, sipward provisioning through the REST API, Kamailio DB.

  provision.py csv   OUT.csv NUSERS                 SIPp injection file "userNNNNN;<password>"
  provision.py api   BASE_URL TOKEN NUSERS          one POST /api/v1/accounts per customer
  provision.py kamdb KAMAILIO.sqlite REALM NUSERS   set the same passwords in Kamailio's subscriber table

Users are user00001..userNNNNN (the peer harness's names) with password
"passNNNNN-bench": sipward refuses passwords under 12 characters, so the
harness's own "passNNNNN" cannot be used; Kamailio gets the same passwords
(kamdb) so that both servers verify the same credentials.

The customers mirror the peer harness's address table (kamailio/address.tsv):
  acme: 127.0.0.2/32 and 127.0.1.0/28 (IP auth) + the NUSERS SIP users
  beta: 127.0.2.0/24 (IP auth)
Channel and CPS limits are set high enough not to bite: they are checked on
every call (part of the per-call work), as in the Kamailio configuration.
"""
import hashlib
import json
import sqlite3
import sys
import time
import urllib.error
import urllib.request


def user(i):
    return "user%05d" % i, "pass%05d-bench" % i


def write_csv(path, n):
    with open(path, "w") as f:
        f.write("SEQUENTIAL\n")
        for i in range(1, n + 1):
            f.write("%s;%s\n" % user(i))


def api(base, token, n):
    def post(path, body):
        req = urllib.request.Request(base.rstrip("/") + "/api/v1" + path, data=json.dumps(body).encode(),
                                     method="POST", headers={"Authorization": "Bearer " + token,
                                                             "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=300) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            sys.exit("provision: POST %s: %d %s" % (path, e.code, e.read()[:500].decode(errors="replace")))

    t0 = time.time()
    # Every SIP user holds its channels from the account (no unlimited user): an equal share of 1,000,000.
    share = max(1, 1000000 // n)
    users = [{"username": u, "password": p, "channels": share} for u, p in (user(i) for i in range(1, n + 1))]
    acme = post("/accounts", {"name": "acme", "channels": 1000000,
                              "ip_endpoints": [{"address": "127.0.0.2"}, {"address": "127.0.1.0/28"}],
                              "sip_users": users})
    post("/accounts", {"name": "beta", "channels": 1000000, "ip_endpoints": [{"address": "127.0.2.0/24"}]})
    got = len(acme.get("sip_users") or [])
    print("provisioned acme (id %s, %d SIP users, %d IP endpoints) and beta in %.1f s"
          % (acme.get("id"), got, len(acme.get("ip_endpoints") or []), time.time() - t0))
    if got != n:
        sys.exit("provision: created %d SIP users, want %d" % (got, n))


def kamdb(path, realm, n):
    db = sqlite3.connect(path)
    rows = []
    for i in range(1, n + 1):
        u, p = user(i)
        ha1 = hashlib.md5(("%s:%s:%s" % (u, realm, p)).encode()).hexdigest()
        ha1b = hashlib.md5(("%s@%s:%s:%s" % (u, realm, realm, p)).encode()).hexdigest()
        rows.append((p, ha1, ha1b, u))
    with db:
        db.executemany("UPDATE subscriber SET password=?, ha1=?, ha1b=? WHERE username=?", rows)
    cnt = db.execute("SELECT count(*) FROM subscriber WHERE password LIKE '%-bench'").fetchone()[0]
    db.close()
    if cnt != n:
        sys.exit("provision: %s has %d bench passwords, want %d (run mkdb.sh with NUSERS=%d)" % (path, cnt, n, n))
    print("kamailio subscriber table: %d passwords set" % cnt)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "csv":
        write_csv(a[1], int(a[2]))
    elif len(a) == 4 and a[0] == "api":
        api(a[1], a[2], int(a[3]))
    elif len(a) == 4 and a[0] == "kamdb":
        kamdb(a[1], a[2], int(a[3]))
    else:
        sys.exit(__doc__)
