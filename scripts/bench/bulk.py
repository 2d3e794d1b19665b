"""Uploads a bulk CSV and measures sign-ins meanwhile; see scripts/bench/bulk. Standard library
only."""

import html
import http.cookiejar
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

BASE = os.environ["BASE"]
INSTITUTION = json.loads(os.environ["INSTITUTION"])
CLIENT = json.loads(os.environ["CLIENT"])
ROWS = int(os.environ["ROWS"])
RATE = float(os.environ["RATE"])
HASH_SECONDS = json.loads(os.environ["HASHES"])["seconds"]
CODE = INSTITUTION["code"]
REDIRECT = "https://bench.example/callback"
NEW_PASSWORD = "Bench#Pass29"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Cookies (Secure ones sent back over http to 127.0.0.1, as browsers do for localhost)."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            NoRedirect, urllib.request.HTTPCookieProcessor(self.jar))

    def request(self, method, url, form=None, headers=None, body=None):
        data = body
        headers = dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            response = self.opener.open(req)
        except urllib.error.HTTPError as e:
            response = e
        for cookie in self.jar:
            cookie.secure = False
        return response.status, dict(response.headers), response.read().decode("utf-8", "replace")


def field(page, name):
    tag = re.search(r'<input[^>]*name="%s"[^>]*>' % re.escape(name), page)
    value = tag and re.search(r'value="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else None


def authorize_url():
    return f"{BASE}/authorize?" + urllib.parse.urlencode({
        "response_type": "code", "client_id": CLIENT["client_id"], "redirect_uri": REDIRECT,
        "scope": "openid profile institution admin", "state": "st", "nonce": "nn"})


def login(browser, user_id, password):
    """The login page, then the timed POST /login. Returns (seconds, status, headers, page)."""
    _, _, page = browser.request("GET", authorize_url())
    form = {"csrf_token": field(page, "csrf_token"), "req": field(page, "req"),
            "institution_code": CODE, "user_id": user_id, "password": password}
    started = time.perf_counter()
    status, headers, page = browser.request("POST", f"{BASE}/login", form=form)
    return time.perf_counter() - started, status, headers, page


def token(user_id, password):
    browser = Browser()
    _, status, headers, page = login(browser, user_id, password)
    if field(page, "pending"):
        status, headers, page = browser.request("POST", f"{BASE}/login/password", form={
            "csrf_token": field(page, "csrf_token"), "pending": field(page, "pending"),
            "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD})
    code = re.search(r"[?&]code=([^&]+)", headers.get("Location", headers.get("location", "")))
    if not code:
        raise SystemExit(f"sign-in of {user_id} failed: {status}")
    basic = "Basic " + __import__("base64").b64encode(
        f"{CLIENT['client_id']}:{CLIENT['client_secret']}".encode()).decode()
    _, _, body = Browser().request("POST", f"{BASE}/token", form={
        "grant_type": "authorization_code", "code": urllib.parse.unquote(code.group(1)),
        "redirect_uri": REDIRECT}, headers={"Authorization": basic})
    return json.loads(body)["access_token"]


def api(bearer, method, path, body=None, content_type="application/json"):
    headers = {"Authorization": f"Bearer {bearer}"}
    if body is not None:
        headers["Content-Type"] = content_type
    status, _, text = Browser().request(method, f"{BASE}/admin/v1{path}", headers=headers,
                                        body=body)
    return status, text


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, int(round(p / 100 * len(values))) - 1))]


def main():
    master = token(INSTITUTION["master"]["user_id"], INSTITUTION["master"]["initial_password"])
    status, text = api(master, "POST", f"/institutions/{CODE}/accounts", json.dumps({
        "account_type": "manager", "user_id": "bench01", "name": "計測　管理者",
        "name_kana": "ケイソク カンリシャ", "usage_start": "2020-04-01"}).encode())
    assert status == 201, text
    manager = token("bench01", json.loads(text)["initial_password"])

    lines = ["account_type,user_id,name,name_kana,usage_start,second_factor_method,second_factor_email"]
    for i in range(ROWS):
        lines.append(f"一般利用者,s{i:05d},関守　太郎,セキモリ タロウ,2020/04/01,1,s{i:05d}@example.jp")
    csv = ("\r\n".join(lines) + "\r\n").encode("cp932")

    latencies, failures = [], []
    stop = threading.Event()

    def load():
        interval = 1 / RATE
        next_at = time.perf_counter()
        while not stop.is_set():
            # A fresh browser each time: with a session, /authorize skips the login form.
            seconds, status, headers, _ = login(Browser(), "bench01", NEW_PASSWORD)
            if status in (302, 303) and "code=" in headers.get("Location", headers.get("location", "")):
                latencies.append(seconds * 1000)
            else:
                failures.append(status)
            next_at += interval
            time.sleep(max(0, next_at - time.perf_counter()))

    # Sign-in latency alone first, as a reference.
    for _ in range(3):
        login(Browser(), "bench01", NEW_PASSWORD)
    idle = []
    for _ in range(int(RATE * 6)):
        idle.append(login(Browser(), "bench01", NEW_PASSWORD)[0] * 1000)
        time.sleep(1 / RATE)

    loader = threading.Thread(target=load)
    loader.start()
    started = time.perf_counter()
    status, text = api(manager, "POST", f"/institutions/{CODE}/bulk-registrations", csv,
                       "text/csv")
    assert status == 202, text
    reception = json.loads(text)["reception_number"]
    while True:
        status, text = api(manager, "GET", f"/institutions/{CODE}/bulk-registrations/{reception}")
        job = json.loads(text)
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    stop.set()
    loader.join()
    print(f"(b) {ROWS}-row upload to {job['status']} ({job['registered_count']} registered): "
          f"{elapsed:.1f} s = {elapsed / HASH_SECONDS:.2f} x (a) [{HASH_SECONDS:.1f} s]")
    print(f"(c) sign-ins during the job at {RATE}/s: n={len(latencies)} failed={len(failures)} "
          f"p50={percentile(latencies, 50):.0f} ms p99={percentile(latencies, 99):.0f} ms "
          f"max={max(latencies):.0f} ms")
    print(f"    sign-ins alone: n={len(idle)} p50={percentile(idle, 50):.0f} ms "
          f"p99={percentile(idle, 99):.0f} ms")


main()
