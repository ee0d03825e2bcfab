#!/usr/bin/env python3
"""Admin-console benchmark client (issue 6), standard library only.

  admin_client.py signin  BASE EMAIL PASSWORD          -> prints the admin cookie (name=value)
  admin_client.py measure BASE COOKIE N CONC PATH...   -> p50/p95/p99/max per path (ms)
  admin_client.py export  BASE COOKIE PID PATH         -> rows, seconds, rows/s, RSS samples

Sign-in walks the real pages: password, then TOTP enrolment with the base32 secret shown on
/admin/enrol (the code is computed here, RFC 6238 SHA-1 / 6 digits / 30 s).
"""
import base64
import hashlib
import hmac
import http.client
import json
import re
import statistics
import struct
import sys
import threading
import time
import urllib.parse


def totp(secret_b32, at=None):
    key = base64.b32decode(secret_b32.upper() + "=" * (-len(secret_b32) % 8))
    counter = int((at or time.time()) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{code:06d}"


class Browser:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.host, self.port = url.hostname, url.port or 80
        self.cookies = {}

    def request(self, method, path, form=None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read().decode("utf-8", "replace")
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, _, v = pair.partition("=")
                if v:
                    self.cookies[k] = v
                else:
                    self.cookies.pop(k, None)
        conn.close()
        return resp.status, resp.getheader("Location"), data


def csrf(html):
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def signin(base, email, password):
    b = Browser(base)
    _, _, page = b.request("GET", "/admin/login")
    status, location, _ = b.request("POST", "/admin/login", {"email": email, "password": password, "csrf_token": csrf(page)})
    assert status == 303, f"password step: {status}"
    if location == "/admin/enrol":
        _, _, page = b.request("GET", "/admin/enrol")
        secret = re.search(r'<p class="secret"><code>([^<]+)</code>', page).group(1).replace(" ", "")
        status, _, _ = b.request("POST", "/admin/enrol", {"code": totp(secret), "csrf_token": csrf(page)})
        assert status == 200, f"enrolment: {status}"
    else:
        raise SystemExit("account already enrolled: create a fresh one for the benchmark")
    status, _, _ = b.request("GET", "/admin")
    assert status == 200, f"signed in: {status}"
    name = next(k for k in b.cookies if k in ("nfa_admin", "__Host-nfa_admin"))
    print(f"{name}={b.cookies[name]}")


def measure(base, cookie, n, conc, paths):
    url = urllib.parse.urlsplit(base)
    results = {}
    for path in paths:
        times, errors = [], []
        lock = threading.Lock()
        counter = iter(range(n))

        def worker():
            conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
            while True:
                with lock:
                    if next(counter, None) is None:
                        break
                start = time.perf_counter()
                conn.request("GET", path, headers={"Cookie": cookie})
                resp = conn.getresponse()
                resp.read()
                elapsed = (time.perf_counter() - start) * 1000
                with lock:
                    times.append(elapsed)
                    if resp.status != 200:
                        errors.append(resp.status)
            conn.close()

        # Warm-up (plans, caches), not counted.
        warm = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=60)
        for _ in range(3):
            warm.request("GET", path, headers={"Cookie": cookie})
            warm.getresponse().read()
        warm.close()
        started = time.perf_counter()
        threads = [threading.Thread(target=worker) for _ in range(conc)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        times.sort()
        q = statistics.quantiles(times, n=100)
        results[path] = {
            "requests": len(times), "concurrency": conc, "errors": len(errors),
            "p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1),
            "max_ms": round(times[-1], 1), "req_per_s": round(len(times) / wall, 1),
        }
        print(f"{path}\n  n={len(times)} c={conc} errors={len(errors)} p50={q[49]:.1f}ms p95={q[94]:.1f}ms "
              f"p99={q[98]:.1f}ms max={times[-1]:.1f}ms {len(times) / wall:.1f} req/s", flush=True)
    return results


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def export(base, cookie, pid, path):
    url = urllib.parse.urlsplit(base)
    samples, done = [rss_kib(pid)], threading.Event()

    def sampler():
        while not done.is_set():
            samples.append(rss_kib(pid))
            time.sleep(0.2)

    t = threading.Thread(target=sampler)
    t.start()
    start = time.perf_counter()
    conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=600)
    conn.request("GET", path, headers={"Cookie": cookie})
    resp = conn.getresponse()
    size, lines, first_byte = 0, 0, None
    while True:
        chunk = resp.read(1 << 16)
        if not chunk:
            break
        if first_byte is None:
            first_byte = time.perf_counter() - start
        size += len(chunk)
        lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - start
    done.set()
    t.join()
    rows = lines - 1
    out = {
        "status": resp.status, "rows": rows, "bytes": size, "seconds": round(elapsed, 2),
        "first_byte_ms": round((first_byte or 0) * 1000, 1), "rows_per_s": round(rows / elapsed),
        "rss_before_mib": round(samples[0] / 1024, 1), "rss_max_mib": round(max(samples) / 1024, 1),
        "rss_samples_mib": [round(s / 1024, 1) for s in samples[:: max(1, len(samples) // 20)]],
    }
    print(json.dumps(out, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "signin":
        signin(*args)
    elif cmd == "measure":
        base, cookie, n, conc, *paths = args
        print(json.dumps(measure(base, cookie, int(n), int(conc), paths), ensure_ascii=False), file=sys.stderr)
    elif cmd == "export":
        export(args[0], args[1], int(args[2]), args[3])
    elif cmd == "totp":
        print(totp(args[0]))
    else:
        raise SystemExit(__doc__)
