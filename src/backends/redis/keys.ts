// The Redis key layout, and the only place that builds key names. Every key
// of one (agent, sender) pair, and so of each of its sessions, carries the
// pair's hash tag, so the operations on a session touch one Cluster slot:
//   P{agent_sender}:seq                 next session seq (INCR)
//   P{agent_sender}:sessions            ZSET seq -> seq, for find latest
//   P{agent_sender}:deleted             HASH seq -> created_at (JSON, as in meta) of each deleted session
//   P{agent_sender}:r:<request id>      STRING result of a create, append, compact, fork, rewind or
//                                       delete, with a TTL of its writer's retry window and a margin
//   P{agent_sender}:s:<seq>:meta        HASH ConversationMeta (+ `extra`: unknown fields as JSON)
//   P{agent_sender}:s:<seq>:steps       LIST of step JSON; step n is index n-1
//   P{agent_sender}:s:<seq>:state       HASH boundary (last compact step), updated_ms, rewinds (how
//                                       many rewinds removed steps; absent: none)
//   P{agent_sender}:s:<seq>:archives    SET of archive names the session holds: owns, or shares with
//                                       the session it was forked from (a fork is of the same pair)
//   P{agent_sender}:a:<archive>         HASH owner, archived_at, content; removed with its last holder
//   P{agent_sender}:a:<archive>:holders SET of the seqs holding the archive, from its first fork on;
//                                       absent: held by its owner alone (every archive before then)
//   P{arc:<base>}                       HASH next -> highest n, <n> -> owner handle (kept while the
//                                       archive is held, by its owner or by a fork)
//   P{arc:<base>}:r:<request id>        STRING n claimed by a request, with a TTL as above
//   P{index}:sessions                   ZSET handle -> updated_at (ms), for list; kept by the
//                                       scripts on a standalone server, after them on a Cluster
// Left by earlier versions, which remembered the last 1,024 request ids by
// count: P{agent_sender}:creates|deletes, P{arc:<base>}:claims (ZSETs no longer
// read or written) and P{agent_sender}:s:<seq>:ids (removed with its session).
// Names inside keys are slugs, which hold only letters, digits and `-`, so no
// name can reach another's keys or a glob; request ids hold only letters,
// digits, `-` and `_`; the prefix must not hold `{` or `}`.

import { prefixOf, seqOf, type SessionPrefix, type Slug } from '../../format/slug.js';

export interface SessionKeys {
  meta: string;
  steps: string;
  state: string;
  /** Left by earlier versions (recent append ids); deleted with the session. */
  legacyIds: string;
  archives: string;
}

export interface PairKeys {
  seq: string;
  sessions: string;
  /** HASH seq -> created_at of the pair's deleted sessions. */
  deleted: string;
  /** `P{pair}:r:`: the key remembering a write request is this + its id. */
  requests: string;
  /** `P{pair}:s:`: a session's keys are this + `<seq>:<part>`. */
  sessionBase: string;
  /** `P{pair}:a:`: an archive's key is this + its name. */
  archiveBase: string;
}

/**
 * The keys of the pair whose session prefix (`{agent}_{sender}_`) is `pair`;
 * the hash tag is the prefix without its last `_`. Either slug may be empty
 * (`crab__` -> `{crab_}`, `__` -> `{_}`), so the tag is never empty.
 */
export function pairKeys(prefix: string, pair: SessionPrefix): PairKeys {
  const tag = `${prefix}{${pair.slice(0, -1)}}`;
  return {
    seq: `${tag}:seq`,
    sessions: `${tag}:sessions`,
    deleted: `${tag}:deleted`,
    requests: `${tag}:r:`,
    sessionBase: `${tag}:s:`,
    archiveBase: `${tag}:a:`,
  };
}

export function pairKeysOf(prefix: string, slug: Slug): PairKeys {
  return pairKeys(prefix, prefixOf(slug));
}

export function sessionKeys(prefix: string, slug: Slug): SessionKeys {
  const base = `${pairKeysOf(prefix, slug).sessionBase}${seqOf(slug)}:`;
  return { meta: `${base}meta`, steps: `${base}steps`, state: `${base}state`, legacyIds: `${base}ids`, archives: `${base}archives` };
}

export function archiveKey(prefix: string, owner: Slug, name: string): string {
  return pairKeysOf(prefix, owner).archiveBase + name;
}

/** The holders set of an archive key (archiveKey): its name is a slug, so this suffix names no other archive. */
export function holdersKey(archive: string): string {
  return `${archive}:holders`;
}

export function archiveDirectoryKey(prefix: string, base: string): string {
  return `${prefix}{arc:${base}}`;
}

/** The key remembering the claim request `id` in the base's directory (its slot). */
export function archiveRequestKey(prefix: string, base: string, id: string): string {
  return `${archiveDirectoryKey(prefix, base)}:r:${id}`;
}

export function indexKey(prefix: string): string {
  return `${prefix}{index}:sessions`;
}

/** `prefix` with glob characters escaped, for SCAN MATCH (repair only; never on a hot path). */
export function globPrefix(prefix: string): string {
  return prefix.replace(/[*?[\]\\]/g, '\\$&');
}

/** The handle of a session meta key `P{agent_sender}:s:<seq>:meta`, or null. */
export function slugOfMetaKey(prefix: string, key: string): string | null {
  if (!key.startsWith(prefix)) return null;
  const match = /^\{([^{}]+)\}:s:(\d+):meta$/.exec(key.slice(prefix.length));
  return match === null ? null : `${match[1]}_${match[2]}`;
}

/** The base of an archive directory key `P{arc:<base>}`, or null (also for its `:r:<id>` and legacy `:claims` keys). */
export function baseOfDirectoryKey(prefix: string, key: string): string | null {
  if (!key.startsWith(prefix)) return null;
  const match = /^\{arc:([^{}]+)\}$/.exec(key.slice(prefix.length));
  return match === null ? null : match[1]!;
}
