// The Lua scripts that make each write one atomic step on the server. Each
// touches the keys of one (agent, sender) pair only (one Cluster slot), and
// each touches only keys passed in KEYS (Cluster routing and ACLs rely on
// that): the caller names the keys ahead (the seq it expects to claim, the
// archives it expects to hold or release), and the script writes nothing and
// says so (RESEQ, REREAD) when the keys named are not the ones it needs. Scripts that create,
// append, compact, fork, rewind or delete take the key of their request
// (`<tag>:r:<id>`, see keys.ts) and how long to remember it (the writer's retry
// window and a margin, Connection.rememberForMs): the result is kept there with
// that TTL, and a retry of the same request is answered from it without writing
// again. Each request has its own key, so no number of other writers can make a
// retried request forgotten, and the memory is gone once the window has passed.
// Replies: a number or array on success; an error `STEPSTORE_NOTFOUND <handle>`
// when the session does not exist; `STEPSTORE_CONFLICT <why>` when a fence
// fails, checked after the request is recalled (a retry of a request that
// landed gets its first result) and before anything is written. On a
// standalone server the list index is passed as the last key and kept in the
// same step; on a Cluster it lives in another slot, so the key is left out and
// the caller updates it after. The commands the scripts call are the ones the
// prefix-limited ACL user of test/torture/redis-faults.test.ts is given (no
// TIME, no EXPIRE: SET PX).

/** Steps pushed per RPUSH inside the append and fork scripts (unpack() of too many values overflows Lua's stack). */
const PUSH_SLICE = 1000;

/**
 * CREATE's and FORK's answer when the seq they were told is not the counter's next, or is
 * taken (a session or a deleted one there: the counter skips past it, a seq is never reused):
 * `RESEQ <counter>`, try counter + 1. Nothing else is written.
 */
export const RESEQ = 'STEPSTORE_RESEQ';
/** DELETE's and FORK's answer, writing nothing, when the session's archives are not the ones named: read them again. */
export const REREAD = 'STEPSTORE_REREAD';

/** What FORK and REWIND reply, writing nothing, when they need the caller to find the last boundary at or below a step. */
export const RESCAN = 'STEPSTORE_RESCAN';
/** REWIND's answer when the list is not as long as a count taken down by `less` assumed. */
export const MOVED = 'STEPSTORE_MOVED';

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

/** A fenced write: an error (nothing written yet) unless the list holds exactly `expected` steps ('': not fenced). */
const FENCE = `
local function fenced(steps, expected, handle)
  if expected == '' or redis.call('LLEN', steps) == tonumber(expected) then return nil end
  return redis.error_reply('STEPSTORE_CONFLICT ' .. handle .. ' is not at step ' .. expected)
end
`;

/**
 * Session `seq` lets go of an archive (its name already taken out of the
 * session's archives set), given the archive's key and its holders set's;
 * the archive goes when nobody holds it any more (true then). No holders set: the archive is held by its owner alone (never forked).
 */
const RELEASE = `
local function release(archive, holders, seq)
  if redis.call('EXISTS', holders) == 1 then
    redis.call('SREM', holders, seq)
    -- Redis removes a set with its last member.
    if redis.call('EXISTS', holders) == 1 then return false end
  end
  redis.call('DEL', archive, holders)
  return true
end
`;

/**
 * The last boundary at or below step `at`: the state's pointer when that is
 * at or below it; else `found`, the caller's scan of the steps, trusted only
 * while no rewind (`rewinds`) nor another conversation of the handle
 * (created_at) has changed steps 1..at since; else nil (RESCAN).
 */
const BOUNDARY = `
local function boundary_at(state, meta, at, found, rewinds, created)
  local last = tonumber(redis.call('HGET', state, 'boundary') or '0')
  if last <= at then return last end
  if found == '' then return nil end
  if (redis.call('HGET', state, 'rewinds') or '0') ~= rewinds then return nil end
  if (redis.call('HGET', meta, 'created_at') or '') ~= created then return nil end
  return tonumber(found)
end
`;

/**
 * KEYS: pair seq, pair sessions, request, pair deleted, meta and state of the seq to claim, [list index].
 * ARGV: the seq to claim (the counter + 1 as the caller read it), remember ms, updated_ms, handle prefix,
 *       meta field/value pairs...
 * Returns the new seq; or `RESEQ <counter>` when the seq is not the counter's next (another create
 * came first), or is taken (a session or a deleted one there: the counter skips past it, as CREATE
 * never reuses a seq); NOSEQ past 2^53 - 1 (no seq left that could be told from its neighbours).
 */
export const CREATE = `${REMEMBER}
local done = recall(KEYS[3])
if done then return done end
local id = ARGV[1]
local counter = tonumber(redis.call('GET', KEYS[1]) or '0')
if counter + 1 ~= tonumber(id) then return '${RESEQ} ' .. string.format('%d', counter) end
if counter + 1 > 9007199254740991 then return redis.error_reply('STEPSTORE_NOSEQ') end
local seq = redis.call('INCR', KEYS[1])
if redis.call('EXISTS', KEYS[5]) == 1 or redis.call('HGET', KEYS[4], id) then return '${RESEQ} ' .. id end
redis.call('HSET', KEYS[5], unpack(ARGV, 5))
redis.call('HSET', KEYS[6], 'boundary', 0, 'updated_ms', ARGV[3])
redis.call('ZADD', KEYS[2], id, id)
if KEYS[7] then redis.call('ZADD', KEYS[7], ARGV[3], ARGV[4] .. id) end
remember(KEYS[3], id, ARGV[2])
return seq
`;

/**
 * KEYS: meta, steps, state, request, [list index].
 * ARGV: remember ms, kinds (one char per step: b = boundary, m = message, e = other),
 *       messages to count, compacted ('1': message_count restarts at 1 before the messages
 *       are added, crabtalk's count after a compaction), updated_at, updated_ms, handle,
 *       expected highest step ('': not fenced), step JSON...
 * Returns the first step number written.
 */
export const APPEND = `${REMEMBER}${FENCE}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('STEPSTORE_NOTFOUND ' .. ARGV[7]) end
local done = recall(KEYS[4])
if done then return done end
local conflict = fenced(KEYS[2], ARGV[8], ARGV[7])
if conflict then return conflict end
local kinds = ARGV[2]
local n = string.len(kinds)
local last = 0
for from = 9, 8 + n, ${PUSH_SLICE} do
  last = redis.call('RPUSH', KEYS[2], unpack(ARGV, from, math.min(from + ${PUSH_SLICE - 1}, 8 + n)))
end
local first = last - n + 1
if string.find(kinds, 'b', 1, true) then
  for i = n, 1, -1 do
    if string.sub(kinds, i, i) == 'b' then
      redis.call('HSET', KEYS[3], 'boundary', first + i - 1)
      break
    end
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
 * ARGV: remember ms, marker JSON, archive name, owner, archived_at, content, expected highest step ('': not fenced).
 * Stores the archive and appends the marker naming it, together, and restarts
 * message_count at 1 (the summary); returns the marker's step.
 */
export const COMPACT = `${REMEMBER}${FENCE}
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('STEPSTORE_NOTFOUND ' .. ARGV[4]) end
local done = recall(KEYS[4])
if done then return done end
local conflict = fenced(KEYS[2], ARGV[7], ARGV[4])
if conflict then return conflict end
redis.call('HSET', KEYS[6], 'owner', ARGV[4], 'archived_at', ARGV[5], 'content', ARGV[6])
redis.call('SADD', KEYS[5], ARGV[3])
local step = redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], 'boundary', step)
redis.call('HSET', KEYS[1], 'message_count', 1)
remember(KEYS[4], step, ARGV[1])
return step
`;

/**
 * KEYS: meta, steps, state, legacy ids, session archives set, pair sessions, request, pair deleted,
 *       then the archive and its holders set of each name in ARGV, [list index].
 * ARGV: remember ms, seq, handle, the names of the archives the session holds (as the caller read them)...
 * Records the session's created_at (as stored: JSON, '' when missing) under its seq in the pair's
 * deleted hash, so the handle never names another conversation (IMPORT_SESSION), and removes it
 * with its hold on each archive. Returns the names of the archives removed because nobody holds
 * them any more; nil when there was no session; REREAD, writing nothing, when the session holds
 * other archives than those named.
 */
export const DELETE = `${REMEMBER}${RELEASE}
if recall(KEYS[7]) then return {} end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local held = #ARGV - 3
if redis.call('SCARD', KEYS[5]) ~= held then return '${REREAD}' end
for i = 1, held do
  if redis.call('SISMEMBER', KEYS[5], ARGV[3 + i]) == 0 then return '${REREAD}' end
end
local names = {}
for i = 1, held do
  if release(KEYS[7 + 2 * i], KEYS[8 + 2 * i], ARGV[2]) then names[#names + 1] = ARGV[3 + i] end
end
redis.call('HSET', KEYS[8], ARGV[2], redis.call('HGET', KEYS[1], 'created_at') or '')
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call('ZREM', KEYS[6], ARGV[2])
local index = KEYS[9 + 2 * held]
if index then redis.call('ZREM', index, ARGV[3]) end
remember(KEYS[7], ARGV[2], ARGV[1])
return names
`;

/**
 * KEYS: source meta, source steps, source state, source archives set, pair seq, pair sessions,
 *       request, pair deleted, then meta, steps, state and archives set of the seq to claim,
 *       then the archive and its holders set of each name in ARGV, [list index].
 * ARGV: the seq to claim (as CREATE), how many archive names follow, remember ms, updated_ms,
 *       handle prefix, atStep, source seq, then BOUNDARY's found, rewinds, created_at ('' unscanned),
 *       the names of the archives the source holds (as the caller read them), meta field/value pairs...
 * Claims the seq as CREATE does and stores there steps 1..atStep of the source (copied on the
 * server), the boundary pointer at or below atStep, a hold on every archive the source holds
 * (a holders set starts with the source: before, only its owner held it), then the meta.
 * Returns the new seq; nil without a source; RESCAN; RESEQ <counter> (as CREATE); REREAD when the
 * source holds other archives than those named; STEPSTORE_CONFLICT when the source is shorter than atStep.
 * Nothing is written but in the last step, or a skip of the counter past a taken seq.
 */
export const FORK = `${REMEMBER}${BOUNDARY}
local done = recall(KEYS[7])
if done then return done end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local at = tonumber(ARGV[6])
if redis.call('LLEN', KEYS[2]) < at then
  return redis.error_reply('STEPSTORE_CONFLICT ' .. ARGV[5] .. ARGV[7] .. ' no longer holds step ' .. ARGV[6])
end
local boundary = boundary_at(KEYS[3], KEYS[1], at, ARGV[8], ARGV[9], ARGV[10])
if not boundary then return '${RESCAN}' end
local held = tonumber(ARGV[2])
if redis.call('SCARD', KEYS[4]) ~= held then return '${REREAD}' end
for i = 1, held do
  if redis.call('SISMEMBER', KEYS[4], ARGV[10 + i]) == 0 then return '${REREAD}' end
end
local id = ARGV[1]
local counter = tonumber(redis.call('GET', KEYS[5]) or '0')
if counter + 1 ~= tonumber(id) then return '${RESEQ} ' .. string.format('%d', counter) end
if counter + 1 > 9007199254740991 then return redis.error_reply('STEPSTORE_NOSEQ') end
local seq = redis.call('INCR', KEYS[5])
if redis.call('EXISTS', KEYS[9]) == 1 or redis.call('HGET', KEYS[8], id) then return '${RESEQ} ' .. id end
for from = 0, at - 1, ${PUSH_SLICE} do
  redis.call('RPUSH', KEYS[10], unpack(redis.call('LRANGE', KEYS[2], from, math.min(from + ${PUSH_SLICE}, at) - 1)))
end
for i = 1, held do
  local archive, holders = KEYS[11 + 2 * i], KEYS[12 + 2 * i]
  if redis.call('EXISTS', archive) == 1 then
    if redis.call('EXISTS', holders) == 0 then redis.call('SADD', holders, ARGV[7]) end
    redis.call('SADD', holders, id)
    redis.call('SADD', KEYS[12], ARGV[10 + i])
  end
end
redis.call('HSET', KEYS[11], 'boundary', boundary, 'updated_ms', ARGV[4])
redis.call('HSET', KEYS[9], unpack(ARGV, 11 + held))
redis.call('ZADD', KEYS[6], id, id)
local index = KEYS[13 + 2 * held]
if index then redis.call('ZADD', index, ARGV[4], ARGV[5] .. id) end
remember(KEYS[7], id, ARGV[3])
return seq
`;

/**
 * KEYS: meta, steps, state, session archives set, request, then the archive and its holders set of
 *       each name in ARGV, [list index].
 * ARGV: remember ms, toStep, count change ('=<count>', or '-<less>:<expected highest>'), updated_at (JSON), updated_ms, handle, seq,
 *       unused (''), then BOUNDARY's found, rewinds, created_at ('' unscanned),
 *       expected highest step ('': not fenced), archive names the retracted markers name...
 * Trims the steps to toStep, moves the boundary pointer to the last boundary left, counts the
 * rewind (`rewinds`: steps 1..n may have changed), sets message_count, moves updated_at
 * forward only, and lets go of each named archive this session holds (removed once nobody does).
 * Nothing changes when no step is above toStep. Returns {steps removed, archive names removed...};
 * nil without a session; RESCAN; MOVED when the change is '-' and the list is no longer
 * as long as expected (the caller counts the kept steps instead).
 */
export const REWIND = `${REMEMBER}${FENCE}${BOUNDARY}${RELEASE}
local done = redis.call('GET', KEYS[5])
if done then
  local reply = {}
  for word in string.gmatch(done, '%S+') do reply[#reply + 1] = word end
  reply[1] = tonumber(reply[1])
  return reply
end
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local conflict = fenced(KEYS[2], ARGV[12], ARGV[6])
if conflict then return conflict end
local to = tonumber(ARGV[2])
local length = redis.call('LLEN', KEYS[2])
if length <= to then
  remember(KEYS[5], '0', ARGV[1])
  return {0}
end
local count
local less, expected = string.match(ARGV[3], '^%-(%d+):(%d+)$')
if less then
  if tonumber(expected) ~= length then return '${MOVED}' end
  count = math.max(0, tonumber(redis.call('HGET', KEYS[1], 'message_count') or '0') - tonumber(less))
else
  count = tonumber(string.sub(ARGV[3], 2))
end
local boundary = boundary_at(KEYS[3], KEYS[1], to, ARGV[9], ARGV[10], ARGV[11])
if not boundary then return '${RESCAN}' end
if to == 0 then redis.call('DEL', KEYS[2]) else redis.call('LTRIM', KEYS[2], 0, to - 1) end
redis.call('HSET', KEYS[3], 'boundary', boundary)
redis.call('HINCRBY', KEYS[3], 'rewinds', 1)
redis.call('HSET', KEYS[1], 'message_count', count)
local ms = tonumber(ARGV[5])
if ms > tonumber(redis.call('HGET', KEYS[3], 'updated_ms') or '0') then
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
  redis.call('HSET', KEYS[3], 'updated_ms', ARGV[5])
  local index = KEYS[6 + 2 * (#ARGV - 12)]
  if index then redis.call('ZADD', index, 'XX', 'GT', ARGV[5], ARGV[6]) end
end
local removed = {length - to}
for i = 13, #ARGV do
  local archive = 6 + 2 * (i - 13)
  if redis.call('SREM', KEYS[4], ARGV[i]) == 1 and release(KEYS[archive], KEYS[archive + 1], ARGV[7]) then removed[#removed + 1] = ARGV[i] end
end
remember(KEYS[5], table.concat(removed, ' '), ARGV[1])
return removed
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
