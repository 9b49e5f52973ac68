// store.repair(): checks every session and archive and fixes what is safe to
// fix while others write. Over the public API: a dry run changes nothing;
// message_count drifted by updateMeta or importSteps is recomputed from the
// steps by crabtalk's rule (entries; after a compact marker 1 + the entries
// after it, after a legacy marker the entries after it), and a count crabtalk
// wrote is left as it is; markers naming an archive the store does not hold
// are reported, never removed; archives whose owner is gone are removed; a
// second repair finds nothing to fix; repair beside a store that appends
// loses nothing and never makes a counter wrong.
//
// Some of what repair does waits for quiet (the filesystem leaves a session
// written in the last seconds for a later run): `letTimePass` moves every
// file time of an fs fixture 10 minutes back instead of sleeping.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ConversationMeta, RepairReport, StepLine, Store } from 'stepstore';
import type { Fixture, Harness } from './harness.js';
import { doneEvent, expectCode, steered, toolStart, useFixture, userMessage, userMessages } from './fixture.js';

const CRABTALK_ROOT = fileURLToPath(new URL('../fixtures/crabtalk-0.0.22-root', import.meta.url));

function letTimePass(fixture: Fixture): void {
  const spec = fixture.workerSpec();
  if (spec.kind !== 'fs' || !fs.existsSync(spec.dir)) return;
  const then = (Date.now() - 10 * 60_000) / 1000;
  const visit = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const child = path.join(dir, entry.name);
      if (entry.isDirectory()) visit(child);
      fs.utimesSync(child, then, then);
    }
  };
  visit(spec.dir);
  fs.utimesSync(spec.dir, then, then);
}

/** The report's lists that say something was found or done (all but `sessions` and `dryRun`). */
function findings(report: RepairReport): Record<string, unknown[]> {
  const { sessions, dryRun, ...lists } = report;
  return lists;
}

function nothingFound(report: RepairReport): void {
  for (const [name, list] of Object.entries(findings(report))) expect(list, `repair found ${name}`).toEqual([]);
}

/** crabtalk's message_count of these steps (oldest first): entries, restarted at each boundary. */
function liveCount(lines: StepLine[]): number {
  let count = 0;
  for (const line of lines) {
    if ('archive_name' in line) count = 1;
    else if ('compact' in line) count = 0;
    else if ('message' in line) count += 1;
  }
  return count;
}

/** A session of the crabtalk fixture folder: its meta and its steps, in step order. */
function crabtalkSession(slug: string): { meta: ConversationMeta; lines: StepLine[] } {
  const dir = path.join(CRABTALK_ROOT, slug);
  const names = fs.readdirSync(dir).filter((name) => /^step-\d+$/.test(name)).sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
  const read = (name: string) => JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as unknown;
  return { meta: read('meta') as ConversationMeta, lines: names.map((name) => read(name) as StepLine) };
}

/** What a reader sees of every session: to compare before and after a repair. */
async function everything(store: Store): Promise<unknown> {
  const sessions = await store.listSessions();
  return Promise.all(
    sessions.map(async ({ handle }) => ({
      handle,
      snapshot: await store.loadSession(handle, { withArchive: true }),
      steps: await store.readSteps(handle),
    })),
  );
}

export function repairTests(harness: Harness): void {
  describe('repair', () => {
    const t = useFixture(harness);

    it('finds nothing to fix in a store used only through the API, counts its sessions and changes nothing', async () => {
      const store = await t.open();
      const a = await store.createSession('crab', 'u');
      const b = await store.createSession('crab', 'v');
      const c = await store.createSession('owl', 'u');
      await store.appendMessages(a, userMessages('a', 3));
      await store.appendEvents(a, [doneEvent('m')]);
      await store.compact(a, 'summary of a');
      await store.appendMessages(a, [userMessage('after')]);
      await store.appendMessages(b, userMessages('b', 2));
      await store.compact(c, 'to be deleted with c');
      expect(await store.deleteSession(c)).toBe(true);
      await store.close();
      letTimePass(t.fixture);

      const fresh = await t.open();
      const before = await everything(fresh);
      const report = await fresh.repair();
      expect(report.dryRun).toBe(false);
      expect(report.sessions).toBe(2);
      nothingFound(report);
      expect(await everything(fresh)).toEqual(before);
    });

    it('a dry run reports a counter drifted by updateMeta and changes nothing', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 3));
      const meta = (await store.loadSession(handle))!.meta;
      await store.updateMeta(handle, { ...meta, message_count: 99 });
      letTimePass(t.fixture);

      const report = await store.repair({ dryRun: true });
      expect(report.dryRun).toBe(true);
      expect(report.sessions).toBe(1);
      expect(report.countersFixed).toEqual([{ handle, from: 99, to: 3 }]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(99);
      expect((await (await t.open()).loadSession(handle))!.meta.message_count).toBe(99);
      // Nothing changed, so a second dry run says the same.
      expect(await store.repair({ dryRun: true })).toEqual(report);
    });

    it('recomputes message_count from the entries after the last boundary (not events), then a second repair finds nothing', async () => {
      const writer = await t.open();
      const handle = await writer.createSession('crab', 'u');
      await writer.appendMessages(handle, userMessages('m', 2));
      await writer.appendEvents(handle, [toolStart('c1'), doneEvent()]);
      await writer.compact(handle, 'summary');
      await writer.appendMessages(handle, [userMessage('after the marker')]);
      // Its counts written (a compaction's count is taken from the steps then): what comes next is unknown to the counter.
      await writer.close();
      const store = await t.open();
      // importSteps never bumps meta: two messages the counter does not know of.
      await store.importSteps(handle, [userMessage('imported 1'), steered('imported'), userMessage('imported 2')]);
      const other = await store.createSession('crab', 'v');
      await store.appendMessages(other, userMessages('o', 2));
      const otherMeta = (await store.loadSession(other))!.meta;
      await store.updateMeta(other, { ...otherMeta, message_count: 0, title: 'kept' });
      await store.close();
      letTimePass(t.fixture);

      const fresh = await t.open();
      // The summary and the one message appended after the marker.
      expect((await fresh.loadSession(handle))!.meta.message_count).toBe(2);
      const report = await fresh.repair();
      expect(report.countersFixed.sort((x, y) => x.handle.localeCompare(y.handle))).toEqual([
        { handle, from: 2, to: 4 },
        { handle: other, from: 0, to: 2 },
      ]);
      expect(report.countersSkipped).toEqual([]);
      expect((await fresh.loadSession(handle))!.meta.message_count).toBe(4);
      const otherAfter = (await fresh.loadSession(other))!.meta;
      expect(otherAfter.message_count).toBe(2);
      expect(otherAfter.title).toBe('kept');
      expect((await (await t.open()).loadSession(handle))!.meta.message_count).toBe(4);

      letTimePass(t.fixture);
      const second = await fresh.repair();
      expect(second.sessions).toBe(2);
      nothingFound(second);
    });

    it('recomputes a count after a legacy marker (the entries after it) and after a compact marker (1 + the entries after it)', async () => {
      const writer = await t.open();
      const handle = await writer.createSession('crab', 'u');
      await writer.appendMessages(handle, userMessages('before', 3));
      // Imports never touch the count: it still says 3.
      await writer.importSteps(handle, [{ compact: 'inline summary', title: 't' }, doneEvent(), ...userMessages('after legacy', 2)]);
      await writer.close(); // its bump is written now, not during the repair
      const store = await t.open();
      letTimePass(t.fixture);
      const legacy = await store.repair();
      expect(legacy.countersFixed).toEqual([{ handle, from: 3, to: 2 }]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(2);

      await store.importSteps(handle, [{ archive_name: 'crab-u-1-4', archived_at: '2026-03-25T10:00:00Z' }, userMessage('after compact')]);
      letTimePass(t.fixture);
      // 1 (the summary) + 1: the count says 2 already.
      expect((await store.repair()).countersFixed).toEqual([]);
      expect((await store.loadSession(handle))!.meta.message_count).toBe(2);

      await store.importSteps(handle, [{ compact: 'another inline summary' }]);
      letTimePass(t.fixture);
      expect((await store.repair()).countersFixed).toEqual([{ handle, from: 2, to: 0 }]);
      await store.importSteps(handle, [{ archive_name: 'crab-u-1-5', archived_at: '2026-03-25T10:00:00Z' }, ...userMessages('last', 3)]);
      letTimePass(t.fixture);
      expect((await store.repair()).countersFixed).toEqual([{ handle, from: 0, to: 4 }]);
      expect((await (await t.open()).loadSession(handle))!.meta.message_count).toBe(4);
    });

    it('leaves alone a count crabtalk wrote (crab_tg-12345_1: 6 = 1 + 5 entries after its marker) and fixes one it left at 0', async () => {
      const store = await t.open();
      const weather = crabtalkSession('crab_tg-12345_1');
      expect(weather.meta.message_count).toBe(6);
      expect(await store.importSession('crab_tg-12345_1', weather.meta)).toBe(true);
      await store.importSteps('crab_tg-12345_1', weather.lines);
      // Legacy markers, then a compact marker, then two legacy markers in a row: the live part is the last two entries.
      const legacy = crabtalkSession('crab_legacy-user_1');
      expect(legacy.meta.message_count).toBe(0);
      expect(await store.importSession('crab_legacy-user_1', legacy.meta)).toBe(true);
      await store.importSteps('crab_legacy-user_1', legacy.lines);
      letTimePass(t.fixture);

      const report = await store.repair();
      expect(report.countersFixed).toEqual([{ handle: 'crab_legacy-user_1', from: 0, to: 2 }]);
      expect((await store.loadSession('crab_tg-12345_1'))!.meta).toEqual(weather.meta);
      expect((await store.loadSession('crab_legacy-user_1'))!.meta.message_count).toBe(2);
    });

    it('reports a compact marker naming an archive the store does not hold, every time, and leaves it in place', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, [userMessage('before')]);
      const own = await store.compact(handle, 'held here');
      const step = await store.appendCompact(handle, 'elsewhere-7');
      await store.appendMessages(handle, [userMessage('after')]);
      letTimePass(t.fixture);

      const report = await store.repair();
      expect(report.danglingMarkers).toEqual([{ handle, step, archive: 'elsewhere-7' }]);
      expect(report.danglingMarkers.map((m) => m.archive)).not.toContain(own);
      const snapshot = (await store.loadSession(handle, { withArchive: true }))!;
      expect(snapshot.archive).toBe('elsewhere-7');
      expect(snapshot.archiveContent).toBeNull();
      expect(snapshot.history).toEqual([userMessage('after')]);
      expect((await store.repair()).danglingMarkers).toEqual(report.danglingMarkers);

      // Once the archive is stored, the marker no longer dangles.
      expect(await store.importArchive('elsewhere-7', { owner: handle, content: 'arrived late' })).toBe(true);
      letTimePass(t.fixture);
      const after = await store.repair();
      nothingFound(after);
      expect((await store.loadSession(handle, { withArchive: true }))!.archiveContent).toBe('arrived late');
    });

    it('removes an archive whose owner session does not exist; a dry run only reports it', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      const kept = await store.compact(handle, 'owned');
      expect(await store.importArchive('crab-gone-1-1', { owner: 'crab_gone_1', content: 'nobody owns me' })).toBe(true);
      // An archive lives as long as its owner: this one is not shown even before repair removes it.
      expect(await store.getArchive('crab-gone-1-1')).toBeNull();
      letTimePass(t.fixture);

      const dry = await store.repair({ dryRun: true });
      expect(dry.orphanArchivesRemoved).toEqual(['crab-gone-1-1']);
      // A dry run removed nothing: the next one finds the same.
      expect((await store.repair({ dryRun: true })).orphanArchivesRemoved).toEqual(['crab-gone-1-1']);

      const report = await store.repair();
      expect(report.orphanArchivesRemoved).toEqual(['crab-gone-1-1']);
      expect(await store.getArchive('crab-gone-1-1')).toBeNull();
      expect(await store.getArchive(kept)).toBe('owned');
      letTimePass(t.fixture);
      nothingFound(await store.repair());
    });

    it('beside a store that appends and compacts, repair loses nothing and never makes a counter wrong', async () => {
      const writer = await t.open();
      const handles = [
        await writer.createSession('crab', 'u'),
        await writer.createSession('crab', 'v'),
        await writer.createSession('owl', 'u'),
      ];
      const acked = new Map<string, Map<number, unknown>>(handles.map((h) => [h, new Map()]));
      let writing = true;
      const write = async (handle: string, lane: number) => {
        for (let i = 0; i < 40; i++) {
          const items = userMessages(`${handle}:${lane}:${i}`, 1 + (i % 3));
          const steps = i % 7 === 6 ? [await writer.appendCompact(handle, `${handle.replace(/_/g, '-')}-${i}`)] : await writer.appendMessages(handle, items);
          if (i % 7 !== 6) steps.forEach((step, j) => acked.get(handle)!.set(step, items[j]));
        }
      };
      const repairer = await t.open();
      const reports: RepairReport[] = [];
      const repairing = (async () => {
        while (writing) reports.push(await repairer.repair());
      })();
      await Promise.all(handles.flatMap((handle) => [write(handle, 0), write(handle, 1)]));
      writing = false;
      await repairing;
      await writer.close();
      expect(reports.length).toBeGreaterThan(0);
      for (const report of reports) {
        expect(report.unreadableSteps).toEqual([]);
        expect(report.corruptMetas).toEqual([]);
        expect(report.orphanArchivesRemoved).toEqual([]);
      }

      const reader = await t.open();
      for (const handle of handles) {
        const steps = new Map((await reader.readSteps(handle)).map((s) => [s.step, s.line]));
        for (const [step, item] of acked.get(handle)!) expect(steps.get(step), `${handle} step ${step}`).toEqual(item);
        const entries = [...steps.values()].filter((line) => 'message' in line).length;
        expect(entries).toBe(acked.get(handle)!.size);
        // No repair write raced a bump into a wrong count.
        expect((await reader.loadSession(handle))!.meta.message_count, `message_count of ${handle}`).toBe(liveCount([...steps.values()]));
      }
      letTimePass(t.fixture);
      const final = await reader.repair();
      expect(final.countersFixed).toEqual([]);
      expect(final.danglingMarkers).toHaveLength(handles.length * 2 * 5);
    });

    it('refuses a dryRun or fixModes that is not a boolean with INVALID_OPTION, and a closed store with STORE_CLOSED', async () => {
      const store = await t.open();
      await expectCode(() => store.repair({ dryRun: 'yes' as unknown as boolean }), 'INVALID_OPTION');
      await expectCode(() => store.repair({ fixModes: 1 as unknown as boolean }), 'INVALID_OPTION');
      // Nothing but stepstore wrote here (and Redis has no modes): fixModes finds nothing to change.
      expect((await store.repair({ fixModes: true, dryRun: true })).looseModes).toEqual([]);
      await store.close();
      await expectCode(() => store.repair(), 'STORE_CLOSED');
    });
  });
}
