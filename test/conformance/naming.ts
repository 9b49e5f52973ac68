// Behaviour 1 of the core issue: handles are `{senderSlug(agent)}_{senderSlug(createdBy)}_{seq}`,
// bad names are refused with INVALID_NAME, and long names are shortened the
// same way for create and find, so a handle always fits in 255 bytes.

import { describe, expect, it } from 'vitest';
import { senderSlug } from 'stepstore';
import type { Harness } from './harness.js';
import { expectCode, useFixture, userMessage } from './fixture.js';

/** crabtalk's naming examples, and the Unicode rules behind them. */
export const SLUG_EXAMPLES: readonly [name: string, slug: string][] = [
  ['Telegram User 42', 'telegram-user-42'],
  ['tg:12345', 'tg-12345'],
  ['a__b', 'a-b'],
  ['../../etc', 'etc'],
  ['Émile', 'Émile'],
  ['हिन्दी', 'हिन-दी'],
  ['ÉMILE', 'Émile'],
  ['İstanbul', 'İstanbul'],
  ['Ⅻ', 'Ⅻ'],
  ['ΑΒΓ δ', 'ΑΒΓ-δ'],
  ['E\u0301mile', 'e-mile'],
  ['--a--', 'a'],
  ['a - b', 'a-b'],
  ['Hello, World!', 'hello-world'],
  ['user@example.com', 'user-example-com'],
  ['a😀b', 'a-b'],
  ['a\u00a0b', 'a-b'],
  ['١٢٣', '١٢٣'],
  ['½', '½'],
  ['日本語', '日本語'],
  ['crab', 'crab'],
  ['42', '42'],
];

/** Names with no letter or digit, or with NUL / control characters. */
export const BAD_NAMES: readonly unknown[] = [
  '',
  ' ',
  '---',
  '...',
  '_',
  '/',
  '😀',
  '\u0301',
  'a\u0000b',
  'a\nb',
  'a\tb',
  'a\rb',
  'a\u001bb',
  'a\u007fb',
  'a\u0085b',
  '\u0000',
  42,
  null,
  undefined,
  {},
];

const LONG_NAMES: readonly string[] = [
  'a'.repeat(300),
  'é'.repeat(300),
  '𝒜'.repeat(200),
  'हिन्दी'.repeat(60),
  `${'x'.repeat(120)}:${'Y'.repeat(400)}`,
];

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export function namingTests(harness: Harness): void {
  describe('naming', () => {
    const t = useFixture(harness);

    it.each(SLUG_EXAMPLES)('senderSlug(%j) is %j', (name, slug) => {
      expect(senderSlug(name)).toBe(slug);
    });

    it('names a session {senderSlug(agent)}_{senderSlug(createdBy)}_{seq}, seq counting from 1', async () => {
      const store = await t.open();
      expect(await store.createSession('Telegram User 42', 'tg:12345')).toBe('telegram-user-42_tg-12345_1');
      expect(await store.createSession('Telegram User 42', 'tg:12345')).toBe('telegram-user-42_tg-12345_2');
      expect(await store.createSession('crab', 'tg:12345')).toBe('crab_tg-12345_1');
      for (const [i, [name, slug]] of SLUG_EXAMPLES.entries()) {
        expect(await store.createSession(`agent ${i}`, name)).toBe(`agent-${i}_${slug}_1`);
        expect(await store.createSession(name, `sender ${i}`)).toBe(`${slug}_sender-${i}_1`);
      }
    });

    it('keeps non-ASCII capitals and never lowercases İ or Ⅻ in a handle', async () => {
      const store = await t.open();
      expect(await store.createSession('ÉMILE', 'İⅫ')).toBe('Émile_İⅫ_1');
    });

    it.each(BAD_NAMES.map((name) => [name]))('refuses %j as an agent or a sender with INVALID_NAME', async (name) => {
      const store = await t.open();
      await expectCode(store.createSession(name as string, 'tg:1'), 'INVALID_NAME');
      await expectCode(store.createSession('crab', name as string), 'INVALID_NAME');
      await expectCode(store.findLatestSession(name as string, 'tg:1'), 'INVALID_NAME');
      await expectCode(store.findLatestSession('crab', name as string), 'INVALID_NAME');
      if (name !== undefined) {
        await expectCode(store.listSessions({ agent: name as string }), 'INVALID_NAME');
        await expectCode(store.listSessions({ createdBy: name as string }), 'INVALID_NAME');
      }
      expect(await store.listSessions()).toEqual([]);
    });

    it.each(LONG_NAMES.map((name) => [name.slice(0, 12), name]))(
      'a long name (%s...) gets a handle within 255 bytes that find returns',
      async (_, name) => {
        const store = await t.open();
        const first = await store.createSession(name, name);
        expect(bytes(first)).toBeLessThanOrEqual(255);
        expect(first.endsWith('_1')).toBe(true);
        expect(await store.findLatestSession(name, name)).toBe(first);
        await store.appendMessages(first, [userMessage('hi')]);
        const second = await store.createSession(name, name);
        expect(bytes(second)).toBeLessThanOrEqual(255);
        expect(second).toBe(`${first.slice(0, -1)}2`);
        expect(await store.findLatestSession(name, name)).toBe(second);
        const restarted = await t.open();
        expect(await restarted.findLatestSession(name, name)).toBe(second);
        expect((await restarted.loadSession(first))!.history).toEqual([userMessage('hi')]);
        expect((await restarted.listSessions({ agent: name, createdBy: name })).map((s) => s.handle).sort()).toEqual(
          [first, second].sort(),
        );
        const archive = await restarted.compact(first, 'summary of a long-named session');
        expect(bytes(archive)).toBeLessThanOrEqual(255);
        expect(await restarted.getArchive(archive)).toBe('summary of a long-named session');
      },
    );

    it('two long names that differ only at the end are different senders', async () => {
      const store = await t.open();
      const a = `${'q'.repeat(400)}-a`;
      const b = `${'q'.repeat(400)}-b`;
      const ha = await store.createSession('crab', a);
      const hb = await store.createSession('crab', b);
      expect(ha).not.toBe(hb);
      expect(await store.findLatestSession('crab', a)).toBe(ha);
      expect(await store.findLatestSession('crab', b)).toBe(hb);
      expect((await store.listSessions({ createdBy: a })).map((s) => s.handle)).toEqual([ha]);
    });
  });
}
