#!/usr/bin/env python3
"""Mints an HS256 JSON Web Token byte-for-byte as wsg_token_sign_hs256() does (protocol/token.h).

Usage: mint_token.py SECRET JSON
  SECRET  the HMAC key, taken as the bytes of the argument
  JSON    the payload, signed verbatim (it must parse as a JSON object, so typos fail here and not later)
Prints the token. Stdlib only, so integration tests and the README can use it as is; they may also
`from mint_token import mint`.
"""
import base64
import hashlib
import hmac
import json
import os
import sys

HEADER = b'{"alg":"HS256","typ":"JWT"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint(secret, payload) -> str:
    """secret: bytes or str (UTF-8); payload: bytes, str (signed verbatim) or dict (compact JSON)."""
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if isinstance(payload, dict):
        payload = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    signing_input = b64url(HEADER) + "." + b64url(payload)
    sig = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    secret, payload = os.fsencode(argv[1]), os.fsencode(argv[2])
    if not secret:
        print("mint_token.py: empty secret", file=sys.stderr)
        return 2
    try:
        if not isinstance(json.loads(payload), dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        print(f"mint_token.py: payload: {e}", file=sys.stderr)
        return 2
    print(mint(secret, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
