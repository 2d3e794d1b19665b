#!/usr/bin/env python3
"""Drives Sekimori's login pages like a browser, using only the standard library.

Used by the benchmark scripts to obtain a session cookie (and, with --codes N, to mint N
authorization codes through single sign-on) without a browser. Prints JSON on stdout.

The embedded default requires a second factor for every human sign-in (SPEC §7): this script
passes it the way a person would, through the development outbox (--outbox, default
$SEKIMORI__OUTBOX__PATH): it enrolls an e-mail address when asked, then types the newest code
written to the outbox file.
"""

import argparse
import base64
import hashlib
import http.client
import json
import os
import re
import sys
import urllib.parse


def field(html, name):
    match = re.search(r'name="%s"[^>]*value="([^"]*)"' % re.escape(name), html)
    if not match:
        sys.exit("form field %s not found" % name)
    return match.group(1)


class Browser:
    def __init__(self, host, port):
        self.conn = http.client.HTTPConnection(host, port)
        self.cookies = {}

    def request(self, method, path, form=None):
        headers = {"Accept-Language": "ja"}
        if self.cookies:
            headers["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode("utf-8")
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        return response.status, response.headers, text


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id")
    parser.add_argument("--redirect-uri")
    parser.add_argument("--institution")
    parser.add_argument("--user-id")
    parser.add_argument("--password")
    parser.add_argument("--new-password", help="set when the password is an initial one")
    parser.add_argument("--scope", default="openid profile institution")
    parser.add_argument("--verifier", default="bench-verifier-" + "x" * 40)
    parser.add_argument("--codes", type=int, default=0, help="mint this many codes after sign-in")
    parser.add_argument("--codes-file", help="where to write the minted codes, one per line")
    parser.add_argument("--login-form", action="store_true",
                        help="only fetch /login and print its CSRF cookie, token and sealed state")
    parser.add_argument("--outbox", default=os.environ.get("SEKIMORI__OUTBOX__PATH", "data/outbox.jsonl"),
                        help="the development outbox file, to read second-factor codes from")
    parser.add_argument("--email", default="bench@clinic.example.jp",
                        help="the address enrolled when the account has no second factor yet")
    args = parser.parse_args()

    if args.login_form:
        browser = Browser("127.0.0.1", args.port)
        status, _, page = browser.request("GET", "/login")
        if status != 200:
            sys.exit("/login answered %d" % status)
        print(json.dumps({
            "csrf_cookie": browser.cookies["sekimori_csrf"],
            "csrf_token": field(page, "csrf_token"),
            "req": field(page, "req"),
        }))
        return

    challenge = base64.urlsafe_b64encode(hashlib.sha256(args.verifier.encode()).digest()).rstrip(b"=").decode()
    query = urllib.parse.urlencode({
        "client_id": args.client_id,
        "redirect_uri": args.redirect_uri,
        "response_type": "code",
        "scope": args.scope,
        "state": "bench",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    })
    browser = Browser("127.0.0.1", args.port)
    status, _, page = browser.request("GET", "/authorize?" + query)
    if status != 200:
        sys.exit("authorize answered %d" % status)
    status, headers, page = browser.request("POST", "/login", {
        "csrf_token": field(page, "csrf_token"),
        "req": field(page, "req"),
        "institution_code": args.institution,
        "user_id": args.user_id,
        "password": args.password,
    })
    if status == 200 and 'name="pending"' in page:
        if not args.new_password:
            sys.exit("the account is on an initial password: give --new-password")
        status, headers, page = browser.request("POST", "/login/password", {
            "csrf_token": field(page, "csrf_token"),
            "pending": field(page, "pending"),
            "new_password": args.new_password,
            "new_password_confirm": args.new_password,
        })
    if status == 200 and 'action="/login/second-factor/enroll"' in page and 'name="code"' not in page:
        status, headers, page = browser.request("POST", "/login/second-factor/enroll", {
            "csrf_token": field(page, "csrf_token"),
            "step": field(page, "step"),
            "method": "email",
            "email": args.email,
        })
    if status == 200 and 'action="/second-factor/verify"' in page:
        with open(args.outbox, encoding="utf-8") as f:
            lines = [json.loads(line) for line in f if line.strip()]
        if not lines:
            sys.exit("no second-factor code in the outbox %s" % args.outbox)
        status, headers, page = browser.request("POST", "/second-factor/verify", {
            "csrf_token": field(page, "csrf_token"),
            "step": field(page, "step"),
            "code": lines[-1]["code"],
        })
    if status != 303:
        sys.exit("sign-in failed with status %d" % status)

    def code_of(location):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)["code"][0]

    codes = [code_of(headers["Location"])]
    for _ in range(max(args.codes - 1, 0)):
        status, headers, _ = browser.request("GET", "/authorize?" + query)
        if status != 303:
            sys.exit("single sign-on authorize answered %d" % status)
        codes.append(code_of(headers["Location"]))
    if args.codes_file:
        with open(args.codes_file, "w") as f:
            f.write("\n".join(codes) + "\n")
    print(json.dumps({
        "session_cookie": browser.cookies.get("sekimori_session"),
        "codes": len(codes),
        "verifier": args.verifier,
    }))


if __name__ == "__main__":
    main()
