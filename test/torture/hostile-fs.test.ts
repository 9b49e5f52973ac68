// Part 6 of the torture suite: a hostile filesystem. Symlinks planted at the
// root, a session directory, a meta, a step, an archive, the store's own
// folders, and a meta swapped for a symlink in the instant between the store's
// check and its write; roots that other users could write to or that another
// user owns; umask 000 and 077. Invariant: every planted link is refused or
// skipped (never written through), what it points at outside the root is
// untouched, unsafe roots are refused with UNSAFE_ROOT, and every directory
// the store makes is 0700 and every file 0600 whatever the umask.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StepStoreError, openStore, type FsLayer, type Store } from 'stepstore';
import { nodeFs } from '../../src/backends/fs/durable.js';
import { dropDir, scratchDir, snapshotTree, treeObject } from './lib/scratch.js';
import { codeOf } from '../helpers/codes.js';
import { report } from './summary.js';
import { doneEvent, userMessage } from '../conformance/fixture.js';

const quiet = { warn() {} };
const msg = userMessage;

let base: string;
let root: string;
let outside: string;
let stores: Store[];
const tally = { planted: 0, refused: 0, lost: 0, modesChecked: 0 };

/** A directory outside the root holding what a planted link points at: a file, and a folder shaped like a session. */
function plantOutside(): void {
  fs.mkdirSync(path.join(outside, 'victim-session'), { recursive: true });
  fs.writeFileSync(path.join(outside, 'secret'), 'do not touch\n');
  fs.writeFileSync(
    path.join(outside, 'victim-session', 'meta'),
    JSON.stringify({ agent: 'crab', created_by: 'tg:1', created_at: '2026-01-01T00:00:00Z', title: 'victim', updated_at: '2026-01-01T00:00:00Z', message_count: 1 }),
  );
  fs.writeFileSync(path.join(outside, 'victim-session', 'step-000001'), JSON.stringify(msg('victim')));
  fs.mkdirSync(path.join(outside, 'victim-dir'));
}

/** Stores opened with open() watch every call (see watchingLayer) unless given another layer. */
let watcher: ReturnType<typeof watchingLayer>;

async function open(options: { fs?: FsLayer } = {}): Promise<Store> {
  const store = await openStore({ dir: root, logger: quiet, fs: options.fs ?? watcher.layer });
  stores.push(store);
  return store;
}

let outsideBefore: ReturnType<typeof snapshotTree>;

beforeEach(() => {
  base = scratchDir('hostile-fs');
  root = path.join(base, 'sessions');
  outside = path.join(base, 'outside');
  stores = [];
  plantOutside();
  outsideBefore = snapshotTree(outside);
  watcher = watchingLayer();
});

/**
 * node:fs, watching every call that creates, moves or removes something: the
 * folder it acts in, symlinks resolved, must lie inside the root.
 */
function watchingLayer(): { layer: FsLayer; escapes: string[] } {
  const escapes: string[] = [];
  const check = (call: string, p: string) => {
    let dir: string;
    try {
      dir = fs.realpathSync(path.dirname(p));
    } catch {
      return; // its folder does not exist: the call fails
    }
    let inside: string;
    try {
      inside = fs.realpathSync(root);
    } catch {
      return;
    }
    if (dir !== inside && !dir.startsWith(inside + path.sep)) escapes.push(`${call} ${p} acts in ${dir}`);
  };
  const layer: FsLayer = {
    ...nodeFs,
    openSync: (p, flags, mode) => {
      if ((flags & fs.constants.O_CREAT) !== 0) check('open(O_CREAT)', p);
      return nodeFs.openSync(p, flags, mode);
    },
    linkSync: (a, b) => (check('link', b), nodeFs.linkSync(a, b)),
    unlinkSync: (p) => (check('unlink', p), nodeFs.unlinkSync(p)),
    renameSync: (a, b) => (check('rename from', a), check('rename to', b), nodeFs.renameSync(a, b)),
    mkdirSync: (p, mode) => (check('mkdir', p), nodeFs.mkdirSync(p, mode)),
    replaceFile: (p, data) => (check('replaceFile', p), nodeFs.replaceFile(p, data)),
    removeTree: (p) => (check('removeTree', p), nodeFs.removeTree(p)),
  };
  return { layer, escapes };
}

/** Nothing outside the root changed since the test began. */
function expectOutsideUntouched(): void {
  const after = snapshotTree(outside);
  if (JSON.stringify(treeObject(after)) !== JSON.stringify(treeObject(outsideBefore))) escapedIn.add(expect.getState().currentTestName ?? '?');
  expect(treeObject(after)).toEqual(treeObject(outsideBefore));
}

/** Tests in which something outside the root changed. */
const escapedIn = new Set<string>();
const isKnownBug = (name: string) => name.includes('(known bug');

afterEach(async (ctx) => {
  await Promise.all(stores.map((s) => s.close().catch(() => undefined)));
  try {
    // Every test ends with this check; in a known-bug test (it.fails) its own check has already failed.
    if (!isKnownBug(ctx.task.name)) {
      expectOutsideUntouched();
      expect(watcher.escapes, 'calls that acted outside the root').toEqual([]);
    }
  } finally {
    dropDir(base);
  }
});

describe('6. hostile filesystem', () => {
  describe('symlinks planted in the store', () => {
    it('a root that is a symlink (to a directory, or dangling) is refused UNSAFE_ROOT', async () => {
      for (const target of [outside, path.join(outside, 'nowhere')]) {
        fs.rmSync(root, { force: true });
        fs.symlinkSync(target, root);
        tally.planted += 1;
        expect(await codeOf(() => openStore({ dir: root, logger: quiet }))).toBe('UNSAFE_ROOT');
        tally.refused += 1;
      }
    });

    it('a session directory that is a symlink is no session: not listed, loaded, found, appended to, compacted, retitled or deleted, and its seq is skipped', async () => {
      fs.mkdirSync(root, { mode: 0o700 });
      fs.symlinkSync(path.join(outside, 'victim-session'), path.join(root, 'crab_tg-1_1'));
      tally.planted += 1;
      const store = await open();
      const h = 'crab_tg-1_1';
      expect(await store.listSessions()).toEqual([]);
      expect(await store.loadSession(h)).toBeNull();
      expect(await store.findLatestSession('crab', 'tg:1')).toBeNull();
      const meta = { agent: 'crab', created_by: 'tg:1', created_at: '2026-01-01T00:00:00Z', title: 'x', updated_at: '', message_count: 0 };
      const codes = [
        await codeOf(store.readSteps(h)),
        await codeOf(store.appendMessages(h, [msg('through the link')])),
        await codeOf(store.appendEvents(h, [doneEvent()])),
        await codeOf(store.compact(h, 'summary')),
        await codeOf(store.updateMeta(h, meta)),
      ];
      expect(codes).toEqual(Array(5).fill('SESSION_NOT_FOUND'));
      tally.refused += codes.length;
      expect(await store.deleteSession(h)).toBe(false);
      expect(await store.createSession('crab', 'tg:1')).toBe('crab_tg-1_2');
      expect(await store.findLatestSession('crab', 'tg:1')).toBe('crab_tg-1_2');
      await store.repair();
      expect(fs.lstatSync(path.join(root, h)).isSymbolicLink()).toBe(true);
    });

    it('a meta that is a symlink makes every write fail CORRUPT_META and load refuse it; list skips it', async () => {
      const store = await open();
      const h = await store.createSession('crab', 'tg:1');
      await store.appendMessages(h, [msg('mine')]);
      await store.close();
      fs.rmSync(path.join(root, h, 'meta'));
      fs.symlinkSync(path.join(outside, 'victim-session', 'meta'), path.join(root, h, 'meta'));
      tally.planted += 1;
      const again = await open();
      const meta = JSON.parse(fs.readFileSync(path.join(outside, 'victim-session', 'meta'), 'utf8'));
      const codes = [
        await codeOf(again.loadSession(h)),
        await codeOf(again.appendMessages(h, [msg('through the link')])),
        await codeOf(again.compact(h, 'summary')),
        await codeOf(again.updateMeta(h, { ...meta, title: 'overwritten' })),
      ];
      expect(codes).toEqual(Array(4).fill('CORRUPT_META'));
      tally.refused += codes.length;
      expect(await again.listSessions()).toEqual([]);
      expect(await again.deleteSession(h)).toBe(false);
      await again.repair();
    });

    /** A layer that swaps meta for a symlink out of the root inside replaceFile, after replaceMeta checked it. */
    function racingLayer(): { layer: FsLayer; arm(): void } {
      let armed = false;
      const layer: FsLayer = {
        ...nodeFs,
        replaceFile: async (p, data) => {
          if (armed && path.basename(p) === 'meta') {
            armed = false;
            fs.rmSync(p);
            fs.symlinkSync(path.join(outside, 'secret'), p);
            tally.planted += 1;
          }
          return nodeFs.replaceFile(p, data);
        },
      };
      return { layer, arm: () => void (armed = true) };
    }

    it.fails(
      'a meta swapped for a symlink between the check and the write of updateMeta is not written through (known bug: write-file-atomic follows the link)',
      async () => {
        const race = racingLayer();
        const store = await open({ fs: race.layer });
        const h = await store.createSession('crab', 'tg:1');
        const meta = (await store.loadSession(h))!.meta;
        race.arm();
        const code = await codeOf(store.updateMeta(h, { ...meta, title: 'racing' }));
        expect(['resolved', 'CORRUPT_META', 'IO_ERROR']).toContain(code);
        expectOutsideUntouched();
      },
    );

    it.fails(
      'a meta swapped for a symlink between the check and the write of a meta bump is not written through (known bug: write-file-atomic follows the link)',
      async () => {
        const race = racingLayer();
        const store = await open({ fs: race.layer });
        const h = await store.createSession('crab', 'tg:1');
        await store.appendMessages(h, [msg('bumped')]);
        race.arm();
        await store.close();
        expectOutsideUntouched();
      },
    );

    it('a step that is a symlink is skipped with a diagnostic, never read through or written over; nor is one planted at the next number', async () => {
      const store = await open();
      const h = await store.createSession('crab', 'tg:1');
      await store.appendMessages(h, [msg('one')]);
      fs.symlinkSync(path.join(outside, 'victim-session', 'step-000001'), path.join(root, h, 'step-000002'));
      fs.symlinkSync(path.join(outside, 'secret'), path.join(root, h, 'step-000003'));
      tally.planted += 2;
      const snapshot = await store.loadSession(h);
      expect(snapshot?.history).toEqual([msg('one')]);
      expect(snapshot?.diagnostics.map((d) => d.step)).toEqual([2, 3]);
      expect((await store.readSteps(h)).map((s) => s.step)).toEqual([1]);
      expect(await store.appendMessages(h, [msg('four'), msg('five')])).toEqual([4, 5]);
      // A link planted where the next single append would go.
      fs.symlinkSync(path.join(outside, 'secret'), path.join(root, h, 'step-000006'));
      tally.planted += 1;
      expect(await store.appendMessages(h, [msg('seven')])).toEqual([7]);
      tally.refused += 3;
      expect((await store.loadSession(h))?.history).toEqual([msg('one'), msg('four'), msg('five'), msg('seven')]);
      await store.repair();
      expect(await store.deleteSession(h)).toBe(true);
    });

    it('an archive that is a symlink is not read through, not overwritten by the next compaction, and not deleted through', async () => {
      const store = await open();
      const h = await store.createSession('crab', 'tg:1');
      await store.compact(h, 'first');
      fs.symlinkSync(path.join(outside, 'secret'), path.join(root, '.stepstore', 'archives', 'crab-tg-1-1-2'));
      tally.planted += 1;
      expect(await store.getArchive('crab-tg-1-1-2')).toBeNull();
      expect(await store.compact(h, 'second')).toBe('crab-tg-1-1-3');
      expect(await store.getArchive('crab-tg-1-1-3')).toBe('second');
      expect((await store.loadSession(h, { withArchive: true }))?.archiveContent).toBe('second');
      await store.repair();
      expect(await store.deleteSession(h)).toBe(true);
      tally.refused += 2;
    });

    for (const folder of ['.stepstore', '.stepstore/archives', '.stepstore/trash']) {
      it(
        `a ${folder} folder that is a symlink out of the root is not written through by compact or delete`,
        async () => {
          const watch = watchingLayer();
          const store = await open({ fs: watch.layer });
          const h = await store.createSession('crab', 'tg:1');
          await store.appendMessages(h, [msg('one')]);
          if (folder !== '.stepstore') fs.mkdirSync(path.join(root, '.stepstore'), { mode: 0o700 });
          fs.symlinkSync(path.join(outside, 'victim-dir'), path.join(root, folder));
          tally.planted += 1;
          // Refused, or done inside the root: either way nothing lands outside, at any moment.
          expect(['resolved', 'IO_ERROR', 'UNSAFE_ROOT']).toContain(await codeOf(store.compact(h, 'summary')));
          expectOutsideUntouched();
          expect(['resolved', 'IO_ERROR', 'UNSAFE_ROOT']).toContain(await codeOf(store.deleteSession(h)));
          expectOutsideUntouched();
          // Not even for a moment: no call of the store named a place outside the root.
          if (watch.escapes.length > 0) escapedIn.add(expect.getState().currentTestName ?? '?');
          expect(watch.escapes).toEqual([]);
          tally.refused += 2;
        },
      );
    }
  });

  describe('unsafe roots', () => {
    for (const mode of [0o770, 0o707, 0o777, 0o720, 0o702, 0o1777]) {
      it(`a root with mode ${mode.toString(8)} (writable by others, or by a group that is not the owner's own) is refused UNSAFE_ROOT, naming the root`, async () => {
        fs.mkdirSync(root);
        // Group "daemon" (gid 1) is nobody's private group: a group-writable root in it is a real risk.
        fs.chownSync(root, process.getuid!(), 1);
        fs.chmodSync(root, mode);
        tally.planted += 1;
        const err = await openStore({ dir: root, logger: quiet }).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(StepStoreError);
        expect((err as StepStoreError).code).toBe('UNSAFE_ROOT');
        expect((err as StepStoreError).message).toContain(root);
        tally.refused += 1;
      });
    }

    it('a root owned by another user is refused UNSAFE_ROOT, naming the root', async (ctx) => {
      if (process.getuid?.() !== 0) {
        console.log('torture 6. hostile filesystem: the "owned by another user" case needs root to chown; skipped');
        ctx.skip();
        return;
      }
      fs.mkdirSync(root, { mode: 0o700 });
      fs.chownSync(root, 1, 1);
      tally.planted += 1;
      const err = await openStore({ dir: root, logger: quiet }).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as StepStoreError).code).toBe('UNSAFE_ROOT');
      expect((err as StepStoreError).message).toContain(root);
      tally.refused += 1;
    });

    it('a root that is a file, or a FIFO, is refused UNSAFE_ROOT', async () => {
      fs.writeFileSync(root, 'not a directory');
      expect(await codeOf(() => openStore({ dir: root, logger: quiet }))).toBe('UNSAFE_ROOT');
      fs.rmSync(root);
      expect(spawnSync('mkfifo', ['-m', '600', root]).status).toBe(0);
      expect(await codeOf(() => openStore({ dir: root, logger: quiet }))).toBe('UNSAFE_ROOT');
      fs.rmSync(root);
      tally.planted += 2;
      tally.refused += 2;
    });

    it('a root with mode 0755 or 0750 (readable, not writable, by others) is accepted', async () => {
      for (const mode of [0o755, 0o750, 0o700]) {
        fs.rmSync(root, { recursive: true, force: true });
        fs.mkdirSync(root);
        fs.chmodSync(root, mode);
        const store = await open();
        expect(await store.createSession('crab', `mode-${mode.toString(8)}`)).toMatch(/^crab_mode-/);
      }
    });
  });

  describe('modes under any umask', () => {
    for (const umask of [0o000, 0o077, 0o022]) {
      it(`under umask ${umask.toString(8).padStart(3, '0')} every directory the store makes is 0700 and every file 0600`, async () => {
        const previous = process.umask(umask);
        try {
          const store = await open();
          const h = await store.createSession('crab', 'tg:1');
          await store.appendMessages(h, [msg('one')]);
          await store.appendMessages(h, [msg('two'), msg('three')]);
          await store.appendEvents(h, [doneEvent()]);
          await store.compact(h, 'summary');
          const meta = (await store.loadSession(h))!.meta;
          await store.updateMeta(h, { ...meta, title: 'titled' });
          const doomed = await store.createSession('crab', 'doomed');
          await store.appendMessages(doomed, [msg('gone')]);
          await store.deleteSession(doomed);
          await store.importSession('crab_imported_1', { ...meta, created_by: 'imported' });
          await store.importArchive('imported-1', { owner: 'crab_imported_1', content: 'x' });
          await store.close();
          const repaired = await open();
          expect((await repaired.repair()).looseModes).toEqual([]);
          for (const [rel, entry] of snapshotTree(root)) {
            tally.modesChecked += 1;
            const shown = `${rel || '(root)'} is ${entry.mode.toString(8)}`;
            if (entry.kind === 'dir') expect(entry.mode, shown).toBe(0o700);
            else expect(entry.mode, shown).toBe(0o600);
          }
        } finally {
          process.umask(previous);
        }
      });
    }
  });

  it('reports what was planted', () => {
    const known = [...escapedIn].filter(isKnownBug);
    const unexpected = [...escapedIn].filter((name) => !isKnownBug(name));
    report({
      part: '6. hostile filesystem',
      invariant: 'planted symlinks are refused or skipped and never written through, targets outside the root stay untouched; unsafe roots are refused UNSAFE_ROOT; modes stay 0700/0600 under any umask',
      tried: `${tally.planted} hostile plantings (symlinked root, session, meta, meta swapped mid-write, steps, archive, store folders; unsafe modes and owner), ${tally.refused} refusals checked, ${tally.modesChecked} modes checked under umask 000, 077, 022`,
      iterations: tally.planted,
      faults: tally.planted,
      lost: tally.lost + unexpected.length,
      notes: `a known src limitation wrote outside the root in ${known.length} tests: a meta swapped for a symlink between the store's check and the write (write-file-atomic follows it)` +
        (unexpected.length > 0 ? `; ${unexpected.length} other tests changed something outside the root` : ''),
    });
    expect(unexpected).toEqual([]);
    // The known bugs still reproduce; once fixed, their tests flip and lose their .fails.
    expect(known.length).toBeGreaterThan(0);
    expect(tally.lost).toBe(0);
  });
});
