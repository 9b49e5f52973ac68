// The Lua scripts that make each write one atomic step on the server. Each
// touches the keys of one (agent, sender) pair only (one Cluster slot); keys
// derived inside a script share the pair's hash tag. Scripts that create,
// append, compact or delete take the key of their request (`<tag>:r:<id>`, see
// keys.ts) and how long to remember it (the writer's retry window and a
// margin, Connection.rememberForMs): the result is kept there with that TTL,
// and a retry of the same request is answered from it without writing again.
// Each request has its own key, so no number of other writers can make a
// retried request forgotten, and the memory is gone once the window has passed.
// Replies: a number or array on success; an error `STEPSTORE_NOTFOUND <handle>`
// when the session does not exist. On a standalone server the list index is
// passed as the last key and kept in the same step; on a Cluster it lives in
// another slot, so the key is left out and the caller updates it after.
// The commands the scripts call are the ones the prefix-limited ACL user of
// test/torture/redis-faults.test.ts is given (no TIME, no EXPIRE: SET PX).

/** Steps pushed per RPUSH inside the append script. */
const PUSH_SLICE = 1000;

const REMEMBER = `
-- The result of this very request when it ran before (a retry after a lost reply), else nil.
local function recall(key)
  local done = redis.call('GET', key)
  if done then return tonumber(done) end
  return nil
end
-- Keeps the result of this request for ms milliseconds (its writer's retry window and a margin).
local function remember(key, result, ms)
  redis.call('SET', key, result, 'PX', ms)
end
`;

/**
 * KEYS: pair seq, pair sessions, request, pair deleted, [list index].
 * ARGV: session key base (P{pair}:s:), remember ms, updated_ms, handle prefix, meta field/value pairs...
 * Returns the new seq.
 */
export const CREATE = `${REMEMBER}
local done = recall(KEYS[3])
if done then return done end
-- Seqs are formatted with %d: Lua's own number-to-string turns 10^14 and more into 1e+14 notation.
-- Past 2^53 - 1 a seq could not be told from its neighbours: there is none left.
local seq = redis.call('INCR', KEYS[1])
local id = string.format('%d', seq)
-- A seq is never reused; should the counter ever lag a session or a deleted one, skip past it.
while seq <= 9007199254740991 and (redis.call('EXISTS', ARGV[1] .. id .. ':meta') == 1 or redis.call('HGET', KEYS[4], id)) do
  seq = redis.call('INCR', KEYS[1])
  id = string.format('%d', seq)
end
if seq > 9007199254740991 then return redis.error_reply('STEPSTORE_NOSEQ') end
local base = ARGV[1] .. id .. ':'
redis.call('HSET', base .. 'meta', unpack(ARGV, 5))
redis.call('HSET', base .. 'state', 'boundary', 0, 'updated_ms', ARGV[3])
redis.call('ZADD', KEYS[2], id, id)
if KEYS[5] then redis.call('ZADD', KEYS[5], ARGV[3], ARGV[4] .. id) end
remember(KEYS[3], id, ARGV[2])
return seq
`;

/**
 * KEYS: meta, steps, state, request, [list index].
 * ARGV: remember ms, kinds (one char per step: b = boundary, m = message, e = other),
 *       messages to count, compacted ('1': message_count restarts at 1 before the messages
 *       are added, crabtalk's count after a compaction), updated_at, updated_ms, handle, step JSON...
 * Returns the first step number written.
 */
export const APPEND = `${REMEMBER}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('STEPSTORE_NOTFOUND ' .. ARGV[7]) end
local done = recall(KEYS[4])
if done then return done end
local kinds = ARGV[2]
local n = string.len(kinds)
-- In slices: unpack() of too many values overflows Lua's stack.
local last = 0
for from = 8, 7 + n, ${PUSH_SLICE} do
  last = redis.call('RPUSH', KEYS[2], unpack(ARGV, from, math.min(from + ${PUSH_SLICE - 1}, 7 + n)))
end
local first = last - n + 1
for i = n, 1, -1 do
  if string.sub(kinds, i, i) == 'b' then
    redis.call('HSET', KEYS[3], 'boundary', first + i - 1)
    break
  end
end
local messages = tonumber(ARGV[3])
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[1], 'message_count', 1 + messages)
elseif messages > 0 then
  redis.call('HINCRBY', KEYS[1], 'message_count', messages)
end
if messages > 0 then
  local ms = tonumber(ARGV[6])
  local previous = tonumber(redis.call('HGET', KEYS[3], 'updated_ms') or '0')
  if ms > previous then
    redis.call('HSET', KEYS[1], 'updated_at', ARGV[5])
    redis.call('HSET', KEYS[3], 'updated_ms', ARGV[6])
    if KEYS[5] then redis.call('ZADD', KEYS[5], 'XX', 'GT', ARGV[6], ARGV[7]) end
  end
end
remember(KEYS[4], first, ARGV[1])
return first
`;

/**
 * KEYS: archive directory of the base, request (in the directory's slot). ARGV: owner handle, remember ms.
 * Claims the next n for the base (the same n again for a retried request).
 */
export const CLAIM_ARCHIVE = `${REMEMBER}
local done = recall(KEYS[2])
if done then return done end
local n = redis.call('HINCRBY', KEYS[1], 'next', 1)
redis.call('HSET', KEYS[1], n, ARGV[1])
remember(KEYS[2], n, ARGV[2])
return n
`;

/**
 * KEYS: meta, steps, state, request, session archives set, archive.
 * ARGV: remember ms, marker JSON, archive name, owner, archived_at, content.
 * Stores the archive and appends the marker naming it, together, and restarts
 * message_count at 1 (the summary); returns the marker's step.
 */
export const COMPACT = `${REMEMBER}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('STEPSTORE_NOTFOUND ' .. ARGV[4]) end
local done = recall(KEYS[4])
if done then return done end
redis.call('HSET', KEYS[6], 'owner', ARGV[4], 'archived_at', ARGV[5], 'content', ARGV[6])
redis.call('SADD', KEYS[5], ARGV[3])
local step = redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'boundary', step)
redis.call('HSET', KEYS[1], 'message_count', 1)
remember(KEYS[4], step, ARGV[1])
return step
`;

/**
 * KEYS: meta, steps, state, legacy ids, session archives set, pair sessions, request, pair deleted, [list index].
 * ARGV: remember ms, seq, archive key base (P{pair}:a:), handle.
 * Records the session's created_at (as stored: JSON, '' when missing) under its seq in the pair's
 * deleted hash, so the handle never names another conversation (IMPORT_SESSION), and removes it.
 * Returns the names of the archives removed with the session, or nil when there was no session.
 */
export const DELETE = `${REMEMBER}
if recall(KEYS[7]) then return {} end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local names = redis.call('SMEMBERS', KEYS[5])
for _, name in ipairs(names) do redis.call('DEL', ARGV[3] .. name) end
redis.call('HSET', KEYS[8], ARGV[2], redis.call('HGET', KEYS[1], 'created_at') or '')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[2])
if KEYS[9] then redis.call('ZREM', KEYS[9], ARGV[4]) end
remember(KEYS[7], ARGV[2], ARGV[1])
return names
`;

/**
 * KEYS: meta, state, [list index]. ARGV: updated_ms, handle, meta field/value pairs...
 * Replaces the meta of an existing session.
 */
export const WRITE_META = `
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('STEPSTORE_NOTFOUND ' .. ARGV[2]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], 'updated_ms', ARGV[1])
if KEYS[3] then redis.call('ZADD', KEYS[3], 'XX', ARGV[1], ARGV[2]) end
return 1
`;

/**
 * KEYS: pair seq, pair sessions, meta, state, pair deleted, [list index].
 * ARGV: seq, updated_ms, handle, accepted created_at, meta field/value pairs...
 * Creates the session under exactly this seq; when it exists, returns its meta hash and writes
 * nothing. When the seq was deleted, creates it only if the created_at recorded then is exactly
 * the accepted one (the import's own, JSON-encoded as in the meta hash, or a spelling of the same
 * instant the caller has seen); otherwise returns the recorded created_at (a string) and writes nothing.
 */
export const IMPORT_SESSION = `
if redis.call('EXISTS', KEYS[3]) == 1 then return redis.call('HGETALL', KEYS[3]) end
local deleted = redis.call('HGET', KEYS[5], ARGV[1])
if deleted and deleted ~= ARGV[4] then return deleted end
redis.call('HSET', KEYS[3], unpack(ARGV, 5))
redis.call('HSET', KEYS[4], 'boundary', 0, 'updated_ms', ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
if KEYS[6] then redis.call('ZADD', KEYS[6], ARGV[2], ARGV[3]) end
return false
`;

/**
 * KEYS: archive directory. ARGV: n, owner.
 * Records the owner of `{base}-{n}` unless taken; returns the recorded owner.
 */
export const CLAIM_ARCHIVE_NAME = `
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner then return owner end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if tonumber(redis.call('HGET', KEYS[1], 'next') or '0') < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'next', ARGV[1])
end
return ARGV[2]
`;

/**
 * KEYS: archive, owner's archives set. ARGV: name, owner, archived_at, content.
 * Stores an imported archive unless present; returns 1 when stored.
 */
export const IMPORT_ARCHIVE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'archived_at', ARGV[3], 'content', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`;

/**
 * KEYS: meta, steps. ARGV: steps counted, message count.
 * Sets message_count unless steps were appended since they were counted; returns 1 when set.
 */
export const SET_COUNT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'message_count', ARGV[2])
return 1
`;
