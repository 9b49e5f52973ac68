// Pure naming rules (src/format/slug.ts): senderSlug against crabtalk's rule and
// an independent oracle, handle and archive-name validation, and the
// deterministic shortening of long names.

import { describe, expect, it } from 'vitest';
import {
  agentPrefix,
  checkArchiveName,
  checkName,
  isHandle,
  parseHandle,
  senderSlug,
  seqAfterPrefix,
  sessionPrefix,
} from '../../src/format/slug.js';
import { SLUG_EXAMPLES, BAD_NAMES } from '../conformance/naming.js';
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

  it.each(SLUG_EXAMPLES)('checkName accepts %j', (name) => {
    expect(codeOf(() => checkName('agent', name))).toBeNull();
  });
});

describe('handles', () => {
  it.each(BAD_HANDLES.map((h) => [h]))('parseHandle refuses %j with INVALID_HANDLE', (handle) => {
    expect(codeOf(() => parseHandle(handle))).toBe('INVALID_HANDLE');
    if (typeof handle === 'string') expect(isHandle(handle)).toBe(false);
  });

  it.each([['crab_tg-12345_1'], ['telegram-user-42_tg-12345_10'], ['Émile_हिन-दी_9007199254740991'], [`${'a'.repeat(125)}_${'b'.repeat(125)}_123`]])(
    'parseHandle accepts %s',
    (handle) => {
      expect(parseHandle(handle)).toBe(handle);
    },
  );

  it('seqAfterPrefix takes only canonical decimal seqs after the exact prefix', () => {
    expect(seqAfterPrefix('crab_user_10', 'crab_user_')).toBe(10);
    expect(seqAfterPrefix('crab_user_9', 'crab_user_')).toBe(9);
    for (const name of ['crab_user_3x', 'crab_user_', 'crab_user_0', 'crab_user_07', 'crab_user_+5', 'crab_users_1', 'xcrab_user_1', 'crab_user_1 ']) {
      expect([name, seqAfterPrefix(name, 'crab_user_')]).toEqual([name, null]);
    }
  });
});

describe('long names', () => {
  const LONG = ['a'.repeat(300), 'é'.repeat(300), '𝒜'.repeat(200), 'हिन्दी'.repeat(60), `${'-'.repeat(200)}x`, `${'ab-'.repeat(100)}`];

  it.each(LONG.map((n) => [n.slice(0, 10), n]))('shortens %s... the same way every time, within 255 bytes', (_, name) => {
    const prefix = sessionPrefix(name, name);
    expect(sessionPrefix(name, name)).toBe(prefix);
    expect(Buffer.byteLength(`${prefix}9007199254740991`)).toBeLessThanOrEqual(255);
    expect(isHandle(`${prefix}9007199254740991`)).toBe(true);
    const archive = `${senderSlug(`${prefix}9007199254740991`)}-9007199254740991`;
    expect(Buffer.byteLength(archive)).toBeLessThanOrEqual(255);
    expect(codeOf(() => checkArchiveName(archive))).toBeNull();
    expect(prefix.startsWith(agentPrefix(name))).toBe(true);
  });

  it('keeps short names as their slug and tells long names with a common head apart', () => {
    expect(sessionPrefix('Telegram User 42', 'tg:12345')).toBe('telegram-user-42_tg-12345_');
    const a = sessionPrefix('crab', `${'q'.repeat(300)}a`);
    const b = sessionPrefix('crab', `${'q'.repeat(300)}b`);
    expect(a).not.toBe(b);
  });
});

describe('archive names', () => {
  it.each(BAD_ARCHIVE_NAMES.map((n) => [n]))('checkArchiveName refuses %j with INVALID_NAME', (name) => {
    expect(codeOf(() => checkArchiveName(name))).toBe('INVALID_NAME');
  });

  it.each([['crab-tg-12345-1-1'], ['é'], ['x'.repeat(255)], ['日本-1']])('checkArchiveName accepts %j', (name) => {
    expect(codeOf(() => checkArchiveName(name))).toBeNull();
  });
});
