"""The relay's token format (common/core/token.h), made and opened in Python.

A token is base64url (no padding) of: version 2, a key id, a 16-byte SIV and
the ciphertext, where SIV = HMAC-SHA256(Kmac, version | key id | exp | data)
truncated to 16 bytes and the ciphertext is AES-256-CTR(Kenc, SIV, exp |
data), exp 8 bytes big-endian; Kmac, Kenc and the key id come from the secret
by HKDF-SHA256.  Built here from the `cryptography` package and the standard
library, independently of the relay's C, so that a token minted here and
accepted by the relay proves the format is the documented one, and so that
tests can read the upstream URL a relay URL stands for (a viewer cannot: it
has no secret).
"""

import base64
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from conftest import SECRET

SALT = b"mediarelay token v2"
VERSION = 2


def _hkdf(secret, info, n):
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=SALT, info=info).derive(secret.encode())


def keys(secret=SECRET):
    """(Kmac, Kenc, key id) of a secret."""
    return (_hkdf(secret, b"mediarelay token siv", 32), _hkdf(secret, b"mediarelay token enc", 32),
            _hkdf(secret, b"mediarelay token key id", 1)[0])


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def _ctr(key, iv, data):
    c = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    return c.update(data) + c.finalize()


def mint(data, exp, secret=SECRET):
    """A token sealing `data` (bytes) until `exp` (seconds)."""
    kmac, kenc, kid = keys(secret)
    head = bytes([VERSION, kid])
    plain = struct.pack(">Q", exp) + data
    siv = hmac.new(kmac, head + plain, hashlib.sha256).digest()[:16]
    return b64(head + siv + _ctr(kenc, siv, plain))


def unseal(token, secret=SECRET):
    """(exp, data) of a token; ValueError when it is not one of this secret."""
    raw = unb64(token)
    kmac, kenc, kid = keys(secret)
    if len(raw) < 26 or raw[0] != VERSION or raw[1] != kid:
        raise ValueError("not a token of this secret")
    siv = raw[2:18]
    plain = _ctr(kenc, siv, raw[18:])
    if not hmac.compare_digest(hmac.new(kmac, raw[:2] + plain, hashlib.sha256).digest()[:16], siv):
        raise ValueError("bad token")
    return struct.unpack(">Q", plain[:8])[0], plain[8:]


def data_of(relay_url):
    """The data sealed in a relay URL's token: /api/seg/TOKEN[.ext][/tail],
    /api/m3u8/TOKEN.m3u8, absolute or not, with a query or not."""
    path = relay_url.split("?", 1)[0]
    for route in ("/api/seg/", "/api/m3u8/"):
        if route in path:
            tok = path.split(route, 1)[1].split("/", 1)[0].split(".", 1)[0]
            return unseal(tok)[1]
    raise ValueError(f"not a relay URL: {relay_url}")


def url_of(relay_url):
    """(kind, scope, upstream URL) of a relay URL's token (kind: "s", "p", "d")."""
    data = data_of(relay_url)
    head, rest = data.split(b"\n", 1)
    return chr(head[0]), head[1:].decode(), rest.split(b"\n", 1)[0].decode()
