// store.repair(): checks every session and archive and fixes what is safe to
// fix while others write. Over the public API: a dry run changes nothing;
// message_count drifted by updateMeta or importSteps is recomputed from the
// steps (messages only); markers naming an archive the store does not hold
// are reported, never removed; archives whose owner is gone are removed; a
// second repair finds nothing to fix; repair beside a store that appends
// loses nothing and never makes a counter wrong.
//
// Some of what repair does waits for quiet (the filesystem leaves a session
// written in the last seconds for a later run): `letTimePass` moves every
// file time of an fs fixture 10 minutes back instead of sleeping.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RepairReport, Store } from 'stepstore';
import type { Fixture, Harness } from './harness.js';
import { expectCode, useFixture, userMessage, userMessages } from './fixture.js';

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
      await store.appendEvents(a, [{ event: 'done', model: 'm' }]);
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

    it('recomputes message_count from the messages (not events or markers), then a second repair finds nothing', async () => {
      const store = await t.open();
      const handle = await store.createSession('crab', 'u');
      await store.appendMessages(handle, userMessages('m', 2));
      await store.appendEvents(handle, [{ event: 'tool_start' }, { event: 'done' }]);
      await store.compact(handle, 'summary');
      await store.appendMessages(handle, [userMessage('after the marker')]);
      // importSteps never bumps meta: two messages the counter does not know of.
      await store.importSteps(handle, [userMessage('imported 1'), { event: 'imported' }, userMessage('imported 2')]);
      const other = await store.createSession('crab', 'v');
      await store.appendMessages(other, userMessages('o', 2));
      const otherMeta = (await store.loadSession(other))!.meta;
      await store.updateMeta(other, { ...otherMeta, message_count: 0, title: 'kept' });
      await store.close();
      letTimePass(t.fixture);

      const fresh = await t.open();
      expect((await fresh.loadSession(handle))!.meta.message_count).toBe(3);
      const report = await fresh.repair();
      expect(report.countersFixed.sort((x, y) => x.handle.localeCompare(y.handle))).toEqual([
        { handle, from: 3, to: 5 },
        { handle: other, from: 0, to: 2 },
      ]);
      expect(report.countersSkipped).toEqual([]);
      expect((await fresh.loadSession(handle))!.meta.message_count).toBe(5);
      const otherAfter = (await fresh.loadSession(other))!.meta;
      expect(otherAfter.message_count).toBe(2);
      expect(otherAfter.title).toBe('kept');
      expect((await (await t.open()).loadSession(handle))!.meta.message_count).toBe(5);

      letTimePass(t.fixture);
      const second = await fresh.repair();
      expect(second.sessions).toBe(2);
      nothingFound(second);
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
        expect((await reader.loadSession(handle))!.meta.message_count, `message_count of ${handle}`).toBe(entries);
      }
      letTimePass(t.fixture);
      const final = await reader.repair();
      expect(final.countersFixed).toEqual([]);
      expect(final.danglingMarkers).toHaveLength(handles.length * 2 * 5);
    });

    it('refuses a dryRun that is not a boolean with INVALID_OPTION, and a closed store with STORE_CLOSED', async () => {
      const store = await t.open();
      await expectCode(() => store.repair({ dryRun: 'yes' as unknown as boolean }), 'INVALID_OPTION');
      await store.close();
      await expectCode(() => store.repair(), 'STORE_CLOSED');
    });
  });
}
