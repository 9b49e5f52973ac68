// crabtalk keeps compaction archives outside the sessions folder, as
// `Archive` entries of the agent's memory file (the README's Archives
// section). This file holds the pure rules around that: a strict parser of
// the memory file's binary layout (version 1), and the numbering floor every
// backend applies so a new archive never takes a name a marker already uses.
//
// Layout, all integers little-endian: a 16-byte header ("CRMEM\0", u32
// version = 1, u16 flags = 0, 4 reserved zero bytes), u64 next_id, u32 entry
// count, then per entry u64 id, u64 created_at, u32 kind (0 note, 1 archive,
// 2 topic), name and content (each u32 byte length + UTF-8), u32 alias count
// and each alias (u32 byte length + UTF-8). Nothing may follow the last entry.

import type { RawStep } from './records.js';
import { archiveNumber } from './archive.js';
import { classifyStep } from './step-line.js';

export const MEMORY_MAGIC = 'CRMEM\0';
export const MEMORY_VERSION = 1;
export const MEMORY_HEADER_BYTES = 16;

/** Entry kinds; only `archive` entries are compaction archives. */
export const MEMORY_KIND = { note: 0, archive: 1, topic: 2 } as const;

export interface MemoryEntry {
  id: bigint;
  createdAt: bigint;
  /** Any u32: kinds this stepstore does not know are kept, never read as archives. */
  kind: number;
  name: string;
  content: string;
  aliases: string[];
}

export interface CrabtalkMemory {
  nextId: bigint;
  entries: MemoryEntry[];
}

/** The whole file, or why it cannot be read: never a part of it. */
export type ParsedMemory = { memory: CrabtalkMemory } | { problem: string };

/** The smallest an entry can be: ids, kind, three empty lengths. */
const MIN_ENTRY_BYTES = 8 + 8 + 4 + 4 + 4 + 4;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Truncated extends Error {}

class Cursor {
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get left(): number {
    return this.#bytes.byteLength - this.offset;
  }

  #need(n: number, what: string): void {
    if (n > this.left) throw new Truncated(`${what} at byte ${this.offset} runs past the end of the file`);
  }

  u16(what: string): number {
    this.#need(2, what);
    const v = this.#view.getUint16(this.offset, true);
    this.offset += 2;
    return v;
  }

  u32(what: string): number {
    this.#need(4, what);
    const v = this.#view.getUint32(this.offset, true);
    this.offset += 4;
    return v;
  }

  u64(what: string): bigint {
    this.#need(8, what);
    const v = this.#view.getBigUint64(this.offset, true);
    this.offset += 8;
    return v;
  }

  bytes(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const out = this.#bytes.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  text(what: string): string {
    const at = this.offset;
    const raw = this.bytes(this.u32(`the length of ${what}`), what);
    try {
      return utf8.decode(raw);
    } catch {
      throw new Truncated(`${what} at byte ${at} is not valid UTF-8`);
    }
  }
}

/** Parses a memory file; anything but a whole, well-formed version-1 file is a problem. */
export function parseCrabtalkMemory(bytes: Uint8Array): ParsedMemory {
  const cursor = new Cursor(bytes);
  try {
    if (bytes.byteLength < MEMORY_HEADER_BYTES) return { problem: `${bytes.byteLength} bytes, shorter than the ${MEMORY_HEADER_BYTES}-byte header` };
    const magic = cursor.bytes(MEMORY_MAGIC.length, 'the magic');
    if (!magic.every((b, i) => b === MEMORY_MAGIC.charCodeAt(i))) return { problem: 'not a crabtalk memory file (wrong magic)' };
    const version = cursor.u32('the version');
    if (version !== MEMORY_VERSION) return { problem: `memory file version ${version}, this stepstore reads version ${MEMORY_VERSION} only` };
    const flags = cursor.u16('the flags');
    if (flags !== 0) return { problem: `unknown header flags ${flags}` };
    if (!cursor.bytes(4, 'the reserved bytes').every((b) => b === 0)) return { problem: 'reserved header bytes are not zero' };
    const nextId = cursor.u64('next_id');
    const count = cursor.u32('the entry count');
    if (count > cursor.left / MIN_ENTRY_BYTES) return { problem: `${count} entries cannot fit in the ${cursor.left} bytes left` };
    const entries: MemoryEntry[] = [];
    for (let i = 0; i < count; i++) {
      const id = cursor.u64(`the id of entry ${i}`);
      const createdAt = cursor.u64(`created_at of entry ${i}`);
      const kind = cursor.u32(`the kind of entry ${i}`);
      const name = cursor.text(`the name of entry ${i}`);
      const content = cursor.text(`the content of entry ${i}`);
      const aliasCount = cursor.u32(`the alias count of entry ${i}`);
      if (aliasCount > cursor.left / 4) return { problem: `entry ${i} claims ${aliasCount} aliases, more than the file can hold` };
      const aliases: string[] = [];
      for (let a = 0; a < aliasCount; a++) aliases.push(cursor.text(`alias ${a} of entry ${i}`));
      entries.push({ id, createdAt, kind, name, content, aliases });
    }
    if (cursor.left !== 0) return { problem: `${cursor.left} bytes follow the last entry` };
    return { memory: { nextId, entries } };
  } catch (err) {
    if (err instanceof Truncated) return { problem: err.message };
    throw err;
  }
}

/** A memory file's archives by name (a later entry of the same name wins), and every name they answer to. */
export interface MemoryArchives {
  byName: Map<string, MemoryEntry>;
  /** Archive names and aliases: what a new archive must not be called. */
  names: string[];
}

export function memoryArchives(memory: CrabtalkMemory): MemoryArchives {
  const byName = new Map<string, MemoryEntry>();
  const names: string[] = [];
  for (const entry of memory.entries) {
    if (entry.kind !== MEMORY_KIND.archive) continue;
    byName.set(entry.name, entry);
    names.push(entry.name, ...entry.aliases);
  }
  return { byName, names };
}

/** The highest n among `names` of the form `{base}-{n}`; 0 when none is. */
export function highestNumber(names: Iterable<string>, base: string): number {
  let highest = 0;
  for (const name of names) highest = Math.max(highest, archiveNumber(name, base) ?? 0);
  return highest;
}

/**
 * The highest n among the archives `{base}-{n}` the session's compact markers
 * name, reading its steps newest first only as far as needed: the scan stops
 * at the first marker naming an archive this store minted for the session
 * (`mintedHere`). That is sound because every name this store mints is above
 * every marker the session held when it was minted (this very scan, plus the
 * store's own archives, decided it), so no marker older than that one can
 * name a higher archive; the cost grows with the steps since the last own
 * compaction, never with the whole session.
 */
export async function markerFloor(
  newestFirst: AsyncIterable<RawStep[]>,
  base: string,
  mintedHere: (name: string) => Promise<boolean>,
): Promise<number> {
  let highest = 0;
  for await (const slice of newestFirst) {
    for (const raw of slice) {
      if ('problem' in raw) continue;
      const classified = classifyStep(raw.text, 'any');
      if (classified.kind !== 'compact') continue;
      const name = (classified.line as { archive_name: string }).archive_name;
      const n = archiveNumber(name, base);
      if (n === null) continue;
      highest = Math.max(highest, n);
      if (await mintedHere(name)) return highest;
    }
  }
  return highest;
}
