"""Lua scripts for every multi-key state change of a job.

Why Lua: a job's state lives in several keys (its hash, the stream, the owner's active set, the expiry
index, the sequence counters). Each transition below must check-and-change them as one step, or two API
replicas could both accept the 32nd job of a key whose quota is 32, or a worker could publish the result of
a job that was cancelled a millisecond earlier. Redis runs a script atomically and, with AOF, persists its
effects as a unit. All scripts only touch keys passed in KEYS.

Status values: queued -> running -> succeeded | failed, queued -> queued (retry), queued|running ->
cancelled. `attempts` counts runs (claims); `entry` is the job's current stream entry id, so a stale entry
(left over from a retry that re-enqueued the job) is recognised and skipped.
"""

from __future__ import annotations

#: KEYS: queue, seq:enqueued, seq:delivered, active:<owner>, job:<id> x n
#: ARGV: max_active, max_queue, json(job fields) x n   (fields must include "id"; all values strings)
#: Returns {n, queued_after} on success, {-1, active} over the quota, {-2, queued} when the queue is full.
ENQUEUE = """
local n = #KEYS - 4
local active = redis.call('SCARD', KEYS[4])
if active + n > tonumber(ARGV[1]) then return {-1, active} end
local queued = tonumber(redis.call('GET', KEYS[2]) or '0') - tonumber(redis.call('GET', KEYS[3]) or '0')
if queued + n > tonumber(ARGV[2]) then return {-2, queued} end
for i = 1, n do
  local fields = cjson.decode(ARGV[2 + i])
  local seq = redis.call('INCR', KEYS[2])
  local entry = redis.call('XADD', KEYS[1], '*', 'job', fields['id'], 'seq', seq)
  local flat = {}
  for k, v in pairs(fields) do
    flat[#flat + 1] = k
    flat[#flat + 1] = v
  end
  redis.call('HSET', KEYS[4 + i], 'status', 'queued', 'seq', seq, 'entry', entry, 'attempts', 0,
             'progress', 0, unpack(flat))
  redis.call('SADD', KEYS[4], fields['id'])
end
return {n, queued + n}
"""

#: KEYS: job:<id>, seq:delivered   ARGV: worker, now, max_attempts, entry id, seq
#: Returns {outcome, attempts}: outcome "running" (go ahead), "exhausted" (too many runs: dead-letter it),
#: or a reason to skip the entry: "missing", "stale", "cancelled", "succeeded", "failed".
CLAIM = """
local delivered = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[5]) > delivered then redis.call('SET', KEYS[2], ARGV[5]) end
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing', 0} end
local job = redis.call('HMGET', KEYS[1], 'status', 'entry', 'attempts')
local attempts = tonumber(job[3] or '0')
if job[1] ~= 'queued' and job[1] ~= 'running' then return {job[1], attempts} end
if job[2] ~= ARGV[4] then return {'stale', attempts} end
if attempts >= tonumber(ARGV[3]) then return {'exhausted', attempts} end
attempts = attempts + 1
redis.call('HSET', KEYS[1], 'status', 'running', 'attempts', attempts, 'worker', ARGV[1],
           'started_at', ARGV[2], 'progress', 0)
return {'running', attempts}
"""

#: KEYS: job:<id>   ARGV: attempt, progress   (only the attempt that owns the job may report progress;
#: checking first also keeps HSET from re-creating the hash of a deleted job)
PROGRESS = """
local job = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if job[1] == 'running' and job[2] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'progress', ARGV[2])
  return 1
end
return 0
"""

#: KEYS: job:<id>, active:<owner>, expiry, queue
#: ARGV: attempt, results json, now, expire_at, job id, entry id, group, melody check json
#: Returns "succeeded" when published; otherwise the status that prevented it (the caller must then
#: delete the files of its attempt). The entry is acknowledged and deleted either way.
FINISH = """
redis.call('XACK', KEYS[4], ARGV[7], ARGV[6])
redis.call('XDEL', KEYS[4], ARGV[6])
local job = redis.call('HMGET', KEYS[1], 'status', 'attempts')
if job[1] ~= 'running' then return job[1] or 'missing' end
if job[2] ~= ARGV[1] then return 'stale' end
redis.call('HSET', KEYS[1], 'status', 'succeeded', 'progress', 1, 'results', ARGV[2], 'finished_at', ARGV[3],
           'result_attempt', ARGV[1], 'error', '', 'melody', ARGV[8])
redis.call('SREM', KEYS[2], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
return 'succeeded'
"""

#: KEYS: job:<id>, active:<owner>, expiry, queue, dead, seq:enqueued
#: ARGV: attempt, error, now, expire_at, job id, entry id, group, final ("1": fail for good)
#: A non-final failure re-enqueues the job at the back of the queue (a new entry, a new seq) so that
#: another worker - or this one, later - retries it; a final one marks it failed and dead-letters it.
#: Returns "failed", "queued", or the status that prevented the change.
FAIL = """
redis.call('XACK', KEYS[4], ARGV[7], ARGV[6])
redis.call('XDEL', KEYS[4], ARGV[6])
local job = redis.call('HMGET', KEYS[1], 'status', 'attempts')
-- 'queued' only for a final failure: a job whose entry cannot be run any more must not stay queued forever
if job[1] ~= 'running' and not (ARGV[8] == '1' and job[1] == 'queued') then return job[1] or 'missing' end
if job[2] ~= ARGV[1] then return 'stale' end
if ARGV[8] == '1' then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[2], 'finished_at', ARGV[3])
  redis.call('SREM', KEYS[2], ARGV[5])
  redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
  redis.call('XADD', KEYS[5], '*', 'job', ARGV[5], 'error', ARGV[2], 'attempts', ARGV[1])
  return 'failed'
end
local seq = redis.call('INCR', KEYS[6])
local entry = redis.call('XADD', KEYS[4], '*', 'job', ARGV[5], 'seq', seq)
redis.call('HSET', KEYS[1], 'status', 'queued', 'seq', seq, 'entry', entry, 'error', ARGV[2], 'progress', 0)
return 'queued'
"""

#: KEYS: job:<id>, active:<owner>, expiry   ARGV: owner, now, expire_at, job id
#: Queued/running jobs become "cancelled" (kept until expiry so the owner can see it); a finished job's
#: record is deleted with its files. Returns "cancelled", "deleted", or "missing" (also for other owners).
CANCEL = """
local job = redis.call('HMGET', KEYS[1], 'owner', 'status')
if job[1] ~= ARGV[1] then return 'missing' end
if job[2] == 'queued' or job[2] == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[2], 'progress', 0)
  redis.call('SREM', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
  return 'cancelled'
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[4])
return 'deleted'
"""

#: KEYS: apikey:<digest> (ignored in open mode), ratelimit:<owner>
#: ARGV: rate per second, burst, cost, check key ("1" with API keys, "0" in open mode)
#: Authentication and the token bucket in one round trip - every request pays for this, polling included.
#: The owner is derived from the key's digest on the API side, so the bucket key is known beforehand.
#: The bucket runs on Redis's clock (one clock for all API replicas).
#: Returns {allowed 1 | 0 (rate limited) | -1 (unknown key), retry_after "s", key name}.
AUTHORIZE = """
local name = 'open'
if ARGV[4] == '1' then
  name = redis.call('HGET', KEYS[1], 'name')
  if not name then return {-1, '0', ''} end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[2], 'tokens', 'ts')
local tokens = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed, retry = 0, 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = (cost - tokens) / rate
end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[2], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(retry), name}
"""
