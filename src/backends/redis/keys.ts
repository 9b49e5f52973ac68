// The Redis key layout, and the only place that builds key names. Every key
// of one (agent, sender) pair, and so of each of its sessions, carries the
// pair's hash tag, so the operations on a session touch one Cluster slot:
//   P{agent_sender}:seq                 next session seq (INCR)
//   P{agent_sender}:sessions            ZSET seq -> seq, for find latest
//   P{agent_sender}:creates|deletes     ZSETs of recent request ids (retries)
//   P{agent_sender}:s:<seq>:meta        HASH ConversationMeta (+ `extra`: unknown fields as JSON)
//   P{agent_sender}:s:<seq>:steps       LIST of step JSON; step n is index n-1
//   P{agent_sender}:s:<seq>:state       HASH boundary (last compact step), updated_ms
//   P{agent_sender}:s:<seq>:ids         ZSET of recent append ids -> first step
//   P{agent_sender}:s:<seq>:archives    SET of archive names the session owns
//   P{agent_sender}:a:<archive>         HASH owner, archived_at, content
//   P{arc:<base>}                       HASH next -> highest n, <n> -> owner handle
//   P{arc:<base>}:claims                ZSET of recent claim request ids -> n (retries)
//   P{index}:sessions                   ZSET handle -> updated_at (ms), for list; kept by the
//                                       scripts on a standalone server, after them on a Cluster
// Names inside keys are slugs, which hold only letters, digits and `-`, so no
// name can reach another's keys or a glob; the prefix must not hold `{` or `}`.

import { seqOf, type SessionPrefix, type Slug } from '../../format/slug.js';

export interface SessionKeys {
  meta: string;
  steps: string;
  state: string;
  ids: string;
  archives: string;
}

export interface PairKeys {
  seq: string;
  sessions: string;
  creates: string;
  deletes: string;
  /** `P{pair}:s:`: a session's keys are this + `<seq>:<part>`. */
  sessionBase: string;
  /** `P{pair}:a:`: an archive's key is this + its name. */
  archiveBase: string;
}

/** The pair a session belongs to: its handle without `_<seq>`. */
function pairOf(slug: Slug): string {
  return slug.slice(0, slug.lastIndexOf('_'));
}

export function pairKeys(prefix: string, pair: SessionPrefix | string): PairKeys {
  const tag = `${prefix}{${pair.endsWith('_') ? pair.slice(0, -1) : pair}}`;
  return {
    seq: `${tag}:seq`,
    sessions: `${tag}:sessions`,
    creates: `${tag}:creates`,
    deletes: `${tag}:deletes`,
    sessionBase: `${tag}:s:`,
    archiveBase: `${tag}:a:`,
  };
}

export function pairKeysOf(prefix: string, slug: Slug): PairKeys {
  return pairKeys(prefix, pairOf(slug));
}

export function sessionKeys(prefix: string, slug: Slug): SessionKeys {
  const base = `${pairKeysOf(prefix, slug).sessionBase}${seqOf(slug)}:`;
  return { meta: `${base}meta`, steps: `${base}steps`, state: `${base}state`, ids: `${base}ids`, archives: `${base}archives` };
}

export function archiveKey(prefix: string, owner: Slug, name: string): string {
  return pairKeysOf(prefix, owner).archiveBase + name;
}

export function archiveDirectoryKey(prefix: string, base: string): string {
  return `${prefix}{arc:${base}}`;
}

export function archiveClaimsKey(prefix: string, base: string): string {
  return `${prefix}{arc:${base}}:claims`;
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

/** The base of an archive directory key `P{arc:<base>}`, or null (also for its `:claims` key). */
export function baseOfDirectoryKey(prefix: string, key: string): string | null {
  if (!key.startsWith(prefix)) return null;
  const match = /^\{arc:([^{}]+)\}$/.exec(key.slice(prefix.length));
  return match === null ? null : match[1]!;
}
