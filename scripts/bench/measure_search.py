"""Times the admin account search; see scripts/bench/measure_search."""

import html
import json
import os
import re
import statistics
import sys
import time
import urllib.parse

import requests

BASE = os.environ["BASE"]
MASTER = json.loads(os.environ["MASTER"])
CLIENT = json.loads(os.environ["CLIENT"])
N = int(os.environ["N"])
CODE = MASTER["code"]
REDIRECT = "https://bench.example/callback"
NEW_PASSWORD = "Bench#Pass29"

QUERIES = [
    ("name=佐藤 (surname, ~2% match)", {"name": "佐藤"}),
    ("name=藤 (one kanji, ~22% match)", {"name": "藤"}),
    ("name=花子 (given name)", {"name": "花子"}),
    ("name=佐藤　花 (three characters)", {"name": "佐藤　花"}),
    ("name_kana=サトウ", {"name_kana": "サトウ"}),
    ("name=佐藤, page 50", {"name": "佐藤", "page": "50"}),
    ("name=佐藤&locked=false&usage_start_from=2022-01-01", {"name": "佐藤", "locked": "false", "usage_start_from": "2022-01-01"}),
    ("no filter (all accounts)", {}),
]


class Session(requests.Session):
    """Sends Secure cookies back to 127.0.0.1 over http, as a browser does for localhost."""

    def send(self, request, **kwargs):
        response = super().send(request, **kwargs)
        for cookie in self.cookies:
            cookie.secure = False
        return response


def field(page, name):
    tag = re.search(r'<input[^>]*name="%s"[^>]*>' % re.escape(name), page)
    value = tag and re.search(r'value="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else None


def sign_in(user_id, password):
    s = Session()
    login = s.get(f"{BASE}/authorize", params={
        "response_type": "code", "client_id": CLIENT["client_id"], "redirect_uri": REDIRECT,
        "scope": "openid profile institution admin", "state": "st", "nonce": "nn",
    }, allow_redirects=False)
    page = s.post(f"{BASE}/login", data={
        "csrf_token": field(login.text, "csrf_token"), "req": field(login.text, "req"),
        "institution_code": CODE, "user_id": user_id, "password": password,
    }, allow_redirects=False)
    if field(page.text, "pending"):
        page = s.post(f"{BASE}/login/password", data={
            "csrf_token": field(page.text, "csrf_token"), "pending": field(page.text, "pending"),
            "new_password": NEW_PASSWORD, "new_password_confirm": NEW_PASSWORD,
        }, allow_redirects=False)
    code = re.search(r"[?&]code=([^&]+)", page.headers.get("location", ""))
    if not code:
        sys.exit(f"sign-in of {user_id} failed: {page.status_code}")
    tokens = requests.post(f"{BASE}/token", data={
        "grant_type": "authorization_code", "code": urllib.parse.unquote(code.group(1)),
        "redirect_uri": REDIRECT,
    }, auth=(CLIENT["client_id"], CLIENT["client_secret"]))
    tokens.raise_for_status()
    return tokens.json()["access_token"]


def main():
    master = sign_in(MASTER["master"]["user_id"], MASTER["master"]["initial_password"])
    manager_id = "bm" + str(int(time.time()) % 100000)
    created = requests.post(
        f"{BASE}/admin/v1/institutions/{CODE}/accounts",
        headers={"Authorization": f"Bearer {master}"},
        json={"account_type": "manager", "user_id": manager_id, "name": "計測　管理者",
              "name_kana": "ケイソク カンリシャ", "usage_start": "2020-04-01"},
    )
    created.raise_for_status()
    token = sign_in(manager_id, created.json()["initial_password"])
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token}"
    url = f"{BASE}/admin/v1/institutions/{CODE}/accounts"
    print(f"| query | total | p50 ms | p95 ms | max ms |")
    print(f"|---|---:|---:|---:|---:|")
    for label, params in QUERIES:
        params = {"per_page": "20", **params}
        for _ in range(20):
            http.get(url, params=params).raise_for_status()
        times = []
        total = None
        for _ in range(N):
            started = time.perf_counter()
            response = http.get(url, params=params)
            times.append((time.perf_counter() - started) * 1000)
            response.raise_for_status()
            total = response.json()["total"]
        times.sort()
        p50 = statistics.median(times)
        p95 = times[int(len(times) * 0.95) - 1]
        print(f"| {label} | {total} | {p50:.1f} | {p95:.1f} | {times[-1]:.1f} |")


main()
