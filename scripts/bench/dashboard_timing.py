#!/usr/bin/env python3
"""Signs a new admin account in (password, TOTP enrolment) and times 60 sequential GETs of the
dashboard, the switches and the audit log. Create the account first:
  printf '%s\\n' 'long password 12345' | normal-form-app admin create bench@example.jp --role operator
then: BASE=http://127.0.0.1:PORT python3 scripts/bench/dashboard_timing.py"""
import re, time, hmac, hashlib, struct, base64, http.cookiejar, urllib.request, urllib.parse, statistics
import os, sys
B = os.environ.get("BASE", "http://127.0.0.1:18431")
EMAIL, PASSWORD = os.environ.get("ADMIN_EMAIL", "bench@example.jp"), os.environ.get("ADMIN_PASSWORD", "long password 12345")
jar = http.cookiejar.CookieJar()
class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k): return None
op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)
def get(p):
    try: r = op.open(B + p); return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()
def post(p, d):
    req = urllib.request.Request(B + p, data=urllib.parse.urlencode(d).encode(), headers={"Origin": B})
    try: r = op.open(req); return r.status, r.read().decode()
    except urllib.error.HTTPError as e: return e.code, e.read().decode()
csrf = lambda h: re.search(r'name="csrf_token" value="([^"]+)"', h).group(1)
def totp(secret, t):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    h = hmac.new(key, struct.pack(">Q", int(t) // 30), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o+4])[0] & 0x7fffffff) % 1000000)
s, h = get("/admin/login")
print(post("/admin/login", {"email": EMAIL, "password": PASSWORD, "csrf_token": csrf(h)})[0])
s, h = get("/admin/enrol")
secret = re.search(r'<p class="secret"><code>([^<]+)</code>', h).group(1).replace(" ", "")
print(post("/admin/enrol", {"code": totp(secret, time.time()), "csrf_token": csrf(h)})[0])
for path in ["/admin", "/admin/switches", "/admin/audit"]:
    times = []
    for i in range(60):
        t = time.perf_counter(); s, h = get(path); times.append((time.perf_counter() - t) * 1000)
        assert s == 200, (s, h[:300])
    times.sort()
    print(path, "p50 %.1f ms  p95 %.1f ms  max %.1f ms" % (times[len(times)//2], times[int(len(times)*0.95)], times[-1]))
s, h = get("/admin")
print(re.findall(r'id="(today-registrations|week-registrations|completion-rate|active-flows|mail-pending|mail-failed|pending-reviews)">([^<]*)', h))
