// A writer of crabtalk memory files in their exact binary layout (version 1),
// written independently of the parser under test: a 16-byte header
// ("CRMEM\0", u32 LE version, u16 LE flags, 4 reserved zero bytes), u64 LE
// next_id, u32 LE entry count, then per entry u64 LE id, u64 LE created_at,
// u32 LE kind, name and content as u32 LE length + UTF-8, u32 LE alias count
// and each alias as u32 LE length + UTF-8. Also crabtalk's way of saving it:
// a whole new file renamed over the old one.

import fs from 'node:fs';
import path from 'node:path';

export const NOTE = 0;
export const ARCHIVE = 1;
export const TOPIC = 2;

export interface EntrySpec {
  kind: number;
  name: string;
  content: string;
  aliases?: string[];
  id?: bigint;
  createdAt?: bigint;
}

export interface HeaderSpec {
  magic?: Buffer;
  version?: number;
  flags?: number;
  reserved?: Buffer;
  nextId?: bigint;
  /** The entry count written, when it should lie about the entries that follow. */
  count?: number;
}

export const archiveEntry = (name: string, content: string, aliases: string[] = []): EntrySpec => ({ kind: ARCHIVE, name, content, aliases });

const u16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
};
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const u64 = (n: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(n);
  return b;
};
const text = (s: string) => {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([u32(bytes.length), bytes]);
};

export function encodeMemory(entries: EntrySpec[], header: HeaderSpec = {}): Buffer {
  const parts: Buffer[] = [
    header.magic ?? Buffer.from('CRMEM\0', 'latin1'),
    u32(header.version ?? 1),
    u16(header.flags ?? 0),
    header.reserved ?? Buffer.alloc(4),
    u64(header.nextId ?? BigInt(entries.length + 1)),
    u32(header.count ?? entries.length),
  ];
  entries.forEach((entry, i) => {
    const aliases = entry.aliases ?? [];
    parts.push(
      u64(entry.id ?? BigInt(i + 1)),
      u64(entry.createdAt ?? 1_774_000_000n + BigInt(i)),
      u32(entry.kind),
      text(entry.name),
      text(entry.content),
      u32(aliases.length),
      ...aliases.map(text),
    );
  });
  return Buffer.concat(parts);
}

/** Saves `bytes` as crabtalk does: a new file beside it, renamed over `file` (a new inode every time). */
export function replaceMemoryFile(file: string, bytes: Buffer): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(temp, bytes);
  fs.renameSync(temp, file);
}

export function writeMemory(file: string, entries: EntrySpec[], header?: HeaderSpec): Buffer {
  const bytes = encodeMemory(entries, header);
  replaceMemoryFile(file, bytes);
  return bytes;
}
