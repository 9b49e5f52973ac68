// Pure naming rules (src/format/slug.ts): senderSlug against crabtalk's rule and
// an independent oracle, name, handle and archive-name validation, and the
// deterministic cut of pairs too long for a 255-byte handle.

import { describe, expect, it } from 'vitest';
import {
  agentPrefix,
  archiveBaseOf,
  checkArchiveName,
  checkName,
  isHandle,
  parseHandle,
  senderSlug,
  seqAfterPrefix,
  sessionPrefix,
  type Slug,
} from '../../src/format/slug.js';
import { SLUG_EXAMPLES, BAD_NAMES, ODD_NAMES } from '../conformance/naming.js';
import { BAD_HANDLES } from '../conformance/errors.js';
import { BAD_ARCHIVE_NAMES } from '../conformance/compact.js';
import { codeOfSync as codeOf } from '../helpers/codes.js';

/** crabtalk's rule written the other way round: regexes over code points. */
function oracle(name: string): string {
  return name
    .replace(/[^\p{Alphabetic}\p{N}-]/gu, '-')
    .replace(/[A-Z]/g, (c) => c.toLowerCase())
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '');
}

const POOL = ['a', 'Z', '0', '9', '-', '_', '.', '/', '\\', ' ', ':', '\u0000', '\n', 'É', 'é', 'İ', 'Ⅻ', 'ß', 'ह', 'ि', '्', '😀', '\u0301', '½', '١', '日', '\u00a0', '\ud800', 'ǅ', 'ﬁ'];

function randomName(random: () => number): string {
  const length = Math.floor(random() * 12);
  return Array.from({ length }, () => POOL[Math.floor(random() * POOL.length)]).join('');
}

/** A small seeded PRNG, so a failure can be replayed. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = seed;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('senderSlug', () => {
  it.each(SLUG_EXAMPLES)('maps %j to %j', (name, slug) => {
    expect(senderSlug(name)).toBe(slug);
  });

  it('agrees with the crabtalk rule on 5,000 random names', () => {
    const random = mulberry32(42);
    for (let i = 0; i < 5000; i++) {
      const name = randomName(random);
      expect([name, senderSlug(name)]).toEqual([name, oracle(name)]);
    }
  });

  it('never yields _, /, \\, ., NUL, an ASCII capital, a leading or trailing dash, or a double dash; and is idempotent', () => {
    const random = mulberry32(7);
    for (let i = 0; i < 5000; i++) {
      const slug = senderSlug(randomName(random));
      expect(slug).not.toMatch(/[_/\\.\u0000A-Z]|^-|-$|--/);
      expect(senderSlug(slug)).toBe(slug);
    }
  });

  it('lowercases only ASCII letters: İ, Ⅻ, É and ǅ keep their case', () => {
    expect(senderSlug('İⅫÉǅ ABC')).toBe('İⅫÉǅ-abc');
    expect('İ'.toLowerCase()).not.toBe('İ');
  });

  it('applies no Unicode normalisation', () => {
    expect(senderSlug('\u00e9')).toBe('\u00e9');
    expect(senderSlug('e\u0301')).toBe('e');
  });
});

describe('names', () => {
  it.each(BAD_NAMES.map((n) => [n]))('checkName refuses %j with INVALID_NAME', (name) => {
    expect(codeOf(() => checkName('agent', name))).toBe('INVALID_NAME');
  });

  it.each([...SLUG_EXAMPLES, ...ODD_NAMES])('checkName accepts %j', (name) => {
    expect(codeOf(() => checkName('agent', name))).toBeNull();
  });

  it('accepts every string without a lone surrogate: 5,000 random names of the pool (which holds NUL, newline and U+D800)', () => {
    const random = mulberry32(11);
    for (let i = 0; i < 5000; i++) {
      const name = randomName(random);
      expect([name, codeOf(() => checkName('sender', name))]).toEqual([name, /\p{Cs}/u.test(name) ? 'INVALID_NAME' : null]);
    }
  });
});

describe('handles', () => {
  it.each(BAD_HANDLES.map((h) => [h]))('parseHandle refuses %j with INVALID_HANDLE', (handle) => {
    expect(codeOf(() => parseHandle(handle))).toBe('INVALID_HANDLE');
    if (typeof handle === 'string') expect(isHandle(handle)).toBe(false);
  });

  it.each([
    ['crab_tg-12345_1'],
    ['telegram-user-42_tg-12345_10'],
    ['Émile_हिन-दी_9007199254740991'],
    [`${'a'.repeat(125)}_${'b'.repeat(125)}_123`],
    ['crab__1'],
    ['_tg-1_1'],
    ['__1'],
    ['__9007199254740991'],
    [`${'a'.repeat(252)}__1`],
  ])('parseHandle accepts %s', (handle) => {
    expect(parseHandle(handle)).toBe(handle);
  });

  it('refuses handles past 255 bytes, even of slugs', () => {
    expect(isHandle(`${'a'.repeat(251)}_b_1`)).toBe(true);
    expect(isHandle(`${'a'.repeat(252)}_b_1`)).toBe(false);
    expect(isHandle(`${'é'.repeat(125)}_b_12`)).toBe(true);
    expect(isHandle(`${'é'.repeat(125)}_b_123`)).toBe(false);
  });

  it('seqAfterPrefix takes only canonical decimal seqs after the exact prefix', () => {
    expect(seqAfterPrefix('crab_user_10', 'crab_user_')).toBe(10);
    expect(seqAfterPrefix('crab_user_9', 'crab_user_')).toBe(9);
    expect(seqAfterPrefix('crab__3', 'crab__')).toBe(3);
    for (const name of ['crab_user_3x', 'crab_user_', 'crab_user_0', 'crab_user_07', 'crab_user_+5', 'crab_users_1', 'xcrab_user_1', 'crab_user_1 ']) {
      expect([name, seqAfterPrefix(name, 'crab_user_')]).toEqual([name, null]);
    }
  });
});

describe('session prefixes', () => {
  const bytes = (s: string) => Buffer.byteLength(s);

  it('are the two whole slugs for empty slugs and control characters', () => {
    expect(sessionPrefix('crab', '😀')).toBe('crab__');
    expect(sessionPrefix('🦀', '')).toBe('__');
    expect(sessionPrefix('crab', 'line\nbreak')).toBe('crab_line-break_');
    expect(sessionPrefix('crab\u0000', 'a\u0000b')).toBe('crab_a-b_');
    expect(agentPrefix('😀')).toBe('_');
  });

  it('keep both slugs whole up to 237 bytes together, and cut from 238 on', () => {
    for (let agent = 1; agent <= 237; agent += 4) {
      const sender = 237 - agent;
      expect(sessionPrefix('a'.repeat(agent), 'b'.repeat(sender))).toBe(`${'a'.repeat(agent)}_${'b'.repeat(sender)}_`);
      const cut = sessionPrefix('a'.repeat(agent), 'b'.repeat(sender + 1));
      expect(cut).not.toBe(`${'a'.repeat(agent)}_${'b'.repeat(sender + 1)}_`);
      expect(bytes(cut)).toBeLessThanOrEqual(239);
    }
  });

  const LONG = ['a'.repeat(300), 'é'.repeat(300), '𝒜'.repeat(200), 'हिन्दी'.repeat(60), `${'-'.repeat(200)}x`, `${'ab-'.repeat(100)}`, 'q'.repeat(119), 'q'.repeat(238)];
  const SHORT = ['', 'u', 'tg:12345', 'x'.repeat(100), 'y'.repeat(118), 'z'.repeat(119), 'w'.repeat(120)];
  const PAIRS = [...LONG.flatMap((a) => [...LONG, ...SHORT].map((s) => [a, s])), ...SHORT.flatMap((a) => LONG.map((s) => [a, s]))];

  it.each(PAIRS.map(([a, s]) => [bytes(a!), bytes(s!), a!, s!]))(
    'a %i-byte agent and a %i-byte sender: the same prefix every time, a handle and archive names within 255 bytes with any seq',
    (_a, _s, agent, sender) => {
      const prefix = sessionPrefix(agent, sender);
      expect(sessionPrefix(agent, sender)).toBe(prefix);
      const handle = `${prefix}9007199254740991`;
      expect(bytes(handle)).toBeLessThanOrEqual(255);
      expect(isHandle(handle)).toBe(true);
      const archive = `${archiveBaseOf(handle as Slug)}-9007199254740991`;
      expect(bytes(archive)).toBeLessThanOrEqual(255);
      expect(codeOf(() => checkArchiveName(archive))).toBeNull();
      expect(prefix.startsWith(agentPrefix(agent))).toBe(true);
      const [agentPart, senderPart] = prefix.split('_');
      // A part that fits in its half is never cut.
      if (bytes(senderSlug(agent)) <= 118) expect(agentPart).toBe(senderSlug(agent));
      if (bytes(senderSlug(sender)) <= 119) expect(senderPart).toBe(senderSlug(sender));
    },
  );

  it('keeps short names as their slug and tells long names with a common head apart', () => {
    expect(sessionPrefix('Telegram User 42', 'tg:12345')).toBe('telegram-user-42_tg-12345_');
    const a = sessionPrefix('crab', `${'q'.repeat(300)}a`);
    const b = sessionPrefix('crab', `${'q'.repeat(300)}b`);
    expect(a).not.toBe(b);
  });

  it('agentPrefix is the whole `{slug}_` while the slug is never cut, else the head all its cuts share', () => {
    expect(agentPrefix('Crab')).toBe('crab_');
    expect(agentPrefix('a'.repeat(118))).toBe(`${'a'.repeat(118)}_`);
    expect(agentPrefix('a'.repeat(119))).toBe('a'.repeat(101));
  });
});

describe('archive bases', () => {
  it('are senderSlug(handle) while `{base}-{n}` fits in 255 bytes with any n', () => {
    expect(archiveBaseOf('crab_tg-12345_1' as Slug)).toBe('crab-tg-12345-1');
    expect(archiveBaseOf('crab__1' as Slug)).toBe('crab-1');
    expect(archiveBaseOf('__1' as Slug)).toBe('1');
    const fits = `${'a'.repeat(118)}_${'b'.repeat(117)}_1` as Slug;
    expect(archiveBaseOf(fits)).toBe(senderSlug(fits));
    const long = `${'a'.repeat(118)}_${'b'.repeat(118)}_1` as Slug;
    expect(archiveBaseOf(long)).toMatch(/^a{118}-b{102}-[0-9a-f]{16}$/);
  });
});

describe('archive names', () => {
  it.each(BAD_ARCHIVE_NAMES.map((n) => [n]))('checkArchiveName refuses %j with INVALID_NAME', (name) => {
    expect(codeOf(() => checkArchiveName(name))).toBe('INVALID_NAME');
  });

  it.each([['crab-tg-12345-1-1'], ['é'], ['x'.repeat(255)], ['日本-1'], ['crab-1-1'], ['1-1']])('checkArchiveName accepts %j', (name) => {
    expect(codeOf(() => checkArchiveName(name))).toBeNull();
  });
});
