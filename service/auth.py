"""API keys: minted by `singsong service create-key`, stored only as SHA-256 digests.

Why a plain SHA-256 and not a password hash (bcrypt, argon2): keys are 256-bit random tokens, not
human-chosen passwords, so there is no dictionary to attack and a slow hash would buy nothing; a fast,
unsalted digest also lets the API find a key with one O(1) lookup (`P apikey:<digest>`) per request.
A leaked Redis dump still reveals no usable key.

Owners: a job belongs to the key's `owner` id (the first 16 hex digits of the digest - stable, not
secret, safe to log). In open mode every request is the owner "open".
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis

from service.keys import Keys

KEY_PREFIX = "ss_"
OPEN_OWNER = "open"


@dataclass(frozen=True)
class Principal:
    """Who is calling: `owner` scopes jobs, quotas and rate limits."""

    owner: str
    name: str


def digest(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def owner_of(key_digest: str) -> str:
    """Derived, not looked up, so the API can name the caller's rate-limit bucket before any Redis call."""
    return key_digest[:16]


def create_key(client: redis.Redis, keys: Keys, name: str) -> tuple[str, str]:
    """Mint a key; returns (key, owner id). The key is shown once and never stored."""
    if not name or len(name) > 100:
        raise ValueError("a key needs a name of 1..100 characters")
    api_key = KEY_PREFIX + secrets.token_urlsafe(32)
    key_digest = digest(api_key)
    owner = owner_of(key_digest)
    pipe = client.pipeline(transaction=True)
    pipe.hset(keys.apikey(key_digest), mapping={"name": name, "owner": owner, "created_at": f"{time.time():.0f}"})
    pipe.hset(keys.apikey_ids, owner, key_digest)
    pipe.execute()
    return api_key, owner


def revoke_key(client: redis.Redis, keys: Keys, owner: str) -> bool:
    """Delete a key by its owner id. Its jobs keep running; new requests with it get 401."""
    key_digest = client.hget(keys.apikey_ids, owner)
    if not key_digest:
        return False
    pipe = client.pipeline(transaction=True)
    pipe.delete(keys.apikey(str(key_digest)))
    pipe.hdel(keys.apikey_ids, owner)
    pipe.execute()
    return True


def list_keys(client: redis.Redis, keys: Keys) -> list[dict[str, str]]:
    out = []
    for owner, key_digest in sorted(client.hgetall(keys.apikey_ids).items()):
        info = client.hgetall(keys.apikey(str(key_digest)))
        out.append({"owner": str(owner), "name": str(info.get("name", "")), "created_at": info.get("created_at", "")})
    return out
