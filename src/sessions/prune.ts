// Pruning: deleting, only when asked, the sessions last updated before a cut.
// Chooses from a listing (metas only, never steps), then re-checks each chosen
// session right before deleting it, in its queue, so one written to meanwhile
// stays. Uses the seam's listSessions, readMeta, highestStep and deleteSession.

import { isStepStoreError, invalidOption } from '../errors.js';
import { archiveBase } from '../format/archive.js';
import { isPlainObject } from '../format/json.js';
import { checkName, parseHandle, type Slug } from '../format/slug.js';
import { compareInstants, instantOf, type Instant } from '../format/time.js';
import type { ConversationMeta, SessionSummary } from '../types.js';
import { assertOpen, type StoreContext } from './context.js';
import { list } from './index.js';

export interface PruneOptions {
  /** The cut: a Date (sessions last updated before that instant), or milliseconds before the call (30 days: 30 * 86_400_000). */
  olderThan: Date | number;
  /** Only this agent's sessions, as listSessions filters. */
  agent?: string;
  /** Only sessions created by this sender, as listSessions filters. */
  createdBy?: string;
  /**
   * Only these sessions are considered (still only when old enough), so no
   * more goes than a dry run showed; each ends up in one list of the report.
   */
  handles?: string[];
  /** Reports what would be deleted, after the same re-checks, and deletes nothing. */
  dryRun?: boolean;
}

export interface PruneReport {
  /** The cut as an ISO time: sessions last updated before it were chosen. */
  cutoff: string;
  /** Deleted (with dryRun: would be), oldest first, with the meta read right before. */
  deleted: SessionSummary[];
  /** Chosen (or given in handles), but written to since (or its meta became unreadable): kept. */
  spared: string[];
  /** Chosen (or given in handles), but no session (of the filter) by its turn: deleted by someone else. */
  gone: string[];
  /** Holding no valid updated_at nor created_at: never chosen (each one also a logger warning). */
  undated: string[];
}

/**
 * Another process's append reaches meta within about 100 ms of being
 * acknowledged (meta counters are written behind). Waiting this long between
 * choosing and re-checking lets the re-check see every append acknowledged
 * before the choice; those after it change the session's highest step.
 */
const BUMPS_VISIBLE_MS = 150;

const OPTION_NAMES = new Set(['olderThan', 'agent', 'createdBy', 'handles', 'dryRun']);

interface CheckedOptions {
  cutoff: Date;
  agent: string | undefined;
  createdBy: string | undefined;
  handles: Set<Slug> | null;
  dryRun: boolean;
}

const isDate = (value: unknown): value is Date => Object.prototype.toString.call(value) === '[object Date]';

/** Every option checked before anything is read; an unknown option is refused, as a misspelt filter would widen the cut. */
function checkOptions(options: unknown): CheckedOptions {
  if (!isPlainObject(options)) throw invalidOption('prune needs an options object with olderThan');
  for (const name of Object.keys(options)) if (!OPTION_NAMES.has(name)) throw invalidOption(`prune has no option ${JSON.stringify(name)}`);
  const { olderThan, agent, createdBy, handles, dryRun } = options as Record<string, unknown>;
  let cutoff: Date;
  if (isDate(olderThan)) cutoff = new Date(Date.prototype.getTime.call(olderThan));
  else if (typeof olderThan === 'number' && Number.isFinite(olderThan) && olderThan >= 0) cutoff = new Date(Date.now() - olderThan);
  else throw invalidOption('olderThan must be a Date or a number of milliseconds >= 0');
  if (Number.isNaN(cutoff.getTime())) throw invalidOption('olderThan names no valid time');
  if (agent !== undefined) checkName('agent', agent);
  if (createdBy !== undefined) checkName('createdBy', createdBy);
  if (handles !== undefined && !Array.isArray(handles)) throw invalidOption('handles must be an array of session handles');
  if (dryRun !== undefined && typeof dryRun !== 'boolean') throw invalidOption('dryRun must be a boolean');
  return {
    cutoff,
    agent,
    createdBy,
    handles: handles === undefined ? null : new Set(handles.map(parseHandle)),
    dryRun: dryRun === true,
  };
}

/** When the session was last updated: updated_at, else created_at; null when neither is a valid time. */
function lastUpdate(meta: ConversationMeta): Instant | null {
  return instantOf(meta.updated_at) ?? instantOf(meta.created_at);
}

type Outcome = { kind: 'deleted'; meta: ConversationMeta } | { kind: 'spared' } | { kind: 'gone' };

/**
 * Deletes sessions last updated before the cut, oldest first. Each chosen
 * session is re-checked in its queue right before its delete: still old
 * enough and no step added since it was chosen, else it is spared.
 */
export async function prune(ctx: StoreContext, options: PruneOptions): Promise<PruneReport> {
  assertOpen(ctx);
  const opts = checkOptions(options);
  const cut: Instant = { seconds: Math.floor(opts.cutoff.getTime() / 1000), nanos: (((opts.cutoff.getTime() % 1000) + 1000) % 1000) * 1e6 };
  const isOld = (at: Instant) => compareInstants(at, cut) < 0;
  const report: PruneReport = { cutoff: opts.cutoff.toISOString(), deleted: [], spared: [], gone: [], undated: [] };

  const chosen: { slug: Slug; highest: number }[] = [];
  const unlisted = new Set(opts.handles);
  for (const { handle, meta } of (await list(ctx, { agent: opts.agent, createdBy: opts.createdBy })).reverse()) {
    const slug = parseHandle(handle);
    if (opts.handles !== null && !unlisted.delete(slug)) continue;
    const at = lastUpdate(meta);
    if (at === null) report.undated.push(handle);
    else if (isOld(at)) {
      const highest = await ctx.backend.highestStep(slug);
      if (highest === null) report.gone.push(handle);
      else chosen.push({ slug, highest });
    } else if (opts.handles !== null) report.spared.push(handle);
  }
  report.gone.push(...unlisted);
  // Warned once all are chosen: a logger (a test) acting on the warning acts between choice and re-check.
  for (const handle of report.undated) {
    ctx.logger.warn(`${handle} has no valid updated_at or created_at; prune leaves it alone`, { session: handle });
  }
  if (chosen.length > 0) await new Promise((resolve) => setTimeout(resolve, BUMPS_VISIBLE_MS));

  for (const { slug, highest } of chosen) {
    const outcome = await ctx.queue.run(slug, async (): Promise<Outcome> => {
      let meta: ConversationMeta | null;
      try {
        meta = await ctx.backend.readMeta(slug);
      } catch (err) {
        if (isStepStoreError(err, 'CORRUPT_META')) return { kind: 'spared' };
        throw err;
      }
      if (meta === null) return { kind: 'gone' };
      const at = lastUpdate(meta);
      if (at === null || !isOld(at)) return { kind: 'spared' };
      // Read last, right before the delete: a step added since the choice, its meta bump maybe still pending, spares it.
      const now = await ctx.backend.highestStep(slug);
      if (now === null) return { kind: 'gone' };
      if (now !== highest) return { kind: 'spared' };
      if (opts.dryRun) return { kind: 'deleted', meta };
      return (await ctx.backend.deleteSession(slug, archiveBase(slug))) ? { kind: 'deleted', meta } : { kind: 'gone' };
    });
    if (outcome.kind === 'deleted') report.deleted.push({ handle: slug, meta: outcome.meta });
    else report[outcome.kind].push(slug);
  }
  return report;
}
