#!/usr/bin/env python3
"""Provisions the accounts of scripts/bench/compare on a running Sekimori (standard library only).

Signs the institution's master in through the real pages (scripts/bench/signin.py) with the
admin client, creates a manager through the admin API, signs the manager in, and has it create
one general account (the person whose single sign-on mints the refresh-token pool) and the
machine accounts (web_api). Prints JSON: the general account's initial password and each
machine account's client ID (`<user_id>@<institution_code>`) and password.
"""

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REDIRECT = "https://rp.example/cb"
VERIFIER = "bench-verifier-" + "x" * 40
NEW_PASSWORD = "Sekimori#29x"


def call(method, url, body=None, headers=None, form=False):
    headers = dict(headers or {})
    data = None
    if body is not None:
        if form:
            data = urllib.parse.urlencode(body).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        else:
            data = json.dumps(body, ensure_ascii=False).encode()
            headers["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as e:
        sys.exit("%s %s answered %d: %s" % (method, url, e.code, e.read().decode()[:500]))


def admin_token(args, user_id, password):
    """Signs `user_id` in through the pages and exchanges the code for an admin access token."""
    with tempfile.NamedTemporaryFile("r", suffix=".codes") as codes:
        subprocess.run([
            sys.executable, os.path.join(HERE, "signin.py"), "--port", str(args.port),
            "--client-id", args.admin_client_id, "--redirect-uri", REDIRECT,
            "--institution", args.institution, "--user-id", user_id, "--password", password,
            "--new-password", NEW_PASSWORD, "--scope", "openid profile institution admin",
            "--verifier", VERIFIER, "--codes", "1", "--codes-file", codes.name,
        ], check=True, stdout=subprocess.DEVNULL)
        code = codes.read().split()[0]
    basic = base64.b64encode(("%s:%s" % (
        urllib.parse.quote(args.admin_client_id, safe=""),
        urllib.parse.quote(args.admin_secret, safe=""))).encode()).decode()
    tokens = call("POST", args.base + "/token", {
        "grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
    }, {"Authorization": "Basic " + basic}, form=True)
    return tokens["access_token"]


def create(args, token, account_type, user_id, name, kana):
    created = call("POST", "%s/admin/v1/institutions/%s/accounts" % (args.base, args.institution), {
        "account_type": account_type, "user_id": user_id, "name": name, "name_kana": kana,
        "usage_start": args.usage_start,
    }, {"Authorization": "Bearer " + token})
    return created["initial_password"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--institution", required=True)
    parser.add_argument("--master-id", default="mst01")
    parser.add_argument("--master-password", required=True, help="the master's initial password")
    parser.add_argument("--admin-client-id", required=True)
    parser.add_argument("--admin-secret", required=True)
    parser.add_argument("--usage-start", required=True, help="YYYY-MM-DD, the institution's")
    parser.add_argument("--machines", type=int, default=8)
    args = parser.parse_args()
    args.base = "http://127.0.0.1:%d" % args.port

    master = admin_token(args, args.master_id, args.master_password)
    manager_password = create(args, master, "manager", "mgr01", "計測　管理者", "ケイソク カンリシャ")
    manager = admin_token(args, "mgr01", manager_password)
    staff_password = create(args, manager, "general", "staff01", "関守　花子", "セキモリ ハナコ")
    machines = []
    for i in range(1, args.machines + 1):
        user_id = "A0%04d" % i
        # Names take full-width digits only.
        number = "".join(chr(0xFF10 + int(d)) for d in str(i))
        password = create(args, manager, "web_api", user_id, "負荷試験連携" + number, "フカシケンレンケイ")
        machines.append({"client_id": "%s@%s" % (user_id, args.institution), "secret": password})
    print(json.dumps({
        "staff": {"user_id": "staff01", "initial_password": staff_password},
        "machines": machines,
    }))


if __name__ == "__main__":
    main()
