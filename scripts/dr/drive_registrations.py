#!/usr/bin/env python3
"""Registers people through the JSON API until told to stop, for the recovery drills.

Each confirmed registration (the submit answered 201 with a 受付番号) is appended to the log as
`<unix ms at confirmation> <registration number>`, flushed at once: the drill later checks that
every registration confirmed before a point in time survives a restore to that time.

usage: drive_registrations.py BASE_URL LOG_FILE SECONDS [WORKERS [PAUSE_SECONDS]]

PAUSE_SECONDS between one worker's registrations makes a light, realistic load (default 0: as
fast as the service answers).
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

BASE, LOG, SECONDS = sys.argv[1], sys.argv[2], float(sys.argv[3])
WORKERS = int(sys.argv[4]) if len(sys.argv) > 4 else 4
PAUSE = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
PASSWORD = "drill-passphrase-2026"
lock = threading.Lock()
counts = {"confirmed": 0, "failed": 0}


def call(method, path, token=None, body=None, expect=200):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=30) as response:
        if response.status != expect:
            raise RuntimeError(f"{method} {path}: {response.status}")
        return json.loads(response.read() or b"{}")


def register(log):
    email = f"drill-{uuid.uuid4().hex[:12]}@example.jp"
    token = call("POST", "/api/v1/flows", expect=201)["token"]
    call("PUT", "/api/v1/flows/current/steps/customer", token, {
        "family_name": "復旧", "given_name": "訓練", "family_name_kana": "フッキュウ", "given_name_kana": "クンレン",
        "email": email, "email_confirm": email, "password": PASSWORD, "phone": "090-1234-5678", "birth_date": "1990-04-01",
    })
    call("PUT", "/api/v1/flows/current/steps/address", token, {
        "postal_code": "150-0002", "prefecture": "東京都", "city": "渋谷区", "street": "渋谷2-21-1", "building": "",
    })
    call("PUT", "/api/v1/flows/current/steps/plan", token, {"plan_id": "basic"})
    done = call("POST", "/api/v1/flows/current/submit", token, {"agree": True}, expect=201)
    confirmed_ms = int(time.time() * 1000)
    with lock:
        log.write(f"{confirmed_ms} {done['registration_number']}\n")
        log.flush()
        counts["confirmed"] += 1


def worker(deadline, log):
    while time.time() < deadline:
        try:
            register(log)
            time.sleep(PAUSE)
        except (urllib.error.URLError, OSError, RuntimeError, KeyError, ValueError):
            with lock:
                counts["failed"] += 1
            time.sleep(0.5)


def main():
    deadline = time.time() + SECONDS
    with open(LOG, "a", encoding="utf-8") as log:
        threads = [threading.Thread(target=worker, args=(deadline, log)) for _ in range(WORKERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    print(f"drive: {counts['confirmed']} confirmed, {counts['failed']} failed attempts", file=sys.stderr)


if __name__ == "__main__":
    main()
