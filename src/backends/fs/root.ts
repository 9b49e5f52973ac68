// The sessions root itself: created with mode 0700 when missing, and refused
// when another user could plant or swap entries in it. A root writable by its
// group is accepted when that group is the owner's own (a user private group,
// as crabtalk's folders get under umask 002): the owner's primary group, no
// other user's primary group, listing no other member. Who is in a group is
// read from the system's account files (/etc/passwd, /etc/group); when they
// cannot be read, or may be incomplete (NIS `+` lines), the group counts as shared.
// repair() asks the same question of every file and directory inside.

import { readFileSync, type Stats } from 'node:fs';
import { StepStoreError, ioError } from '../../errors.js';
import type { FsContext } from './context.js';
import { DIR_MODE, errnoOf, kindOf, type FsLayer } from './durable.js';
import { syncDir } from './durability.js';
import { parentDir } from './paths.js';

const PASSWD_FILE = '/etc/passwd';
const GROUP_FILE = '/etc/group';

interface UserEntry {
  name: string;
  uid: number;
  gid: number;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** The system's users and groups; `problem` when they cannot be known completely. */
export type Accounts = { users: UserEntry[]; groups: GroupEntry[] } | { problem: string };

function readAccountFile(path: string): string[] | string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return `${path} cannot be read (${errnoOf(err) ?? (err as Error).message})`;
  }
  const lines = text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
  // NIS compat entries pull in accounts this file does not list.
  if (lines.some((line) => line.startsWith('+') || line.startsWith('-'))) return `${path} includes accounts from elsewhere (NIS)`;
  return lines;
}

/** Reads the account files (once per open or repair pass: they are small). */
export function readAccounts(): Accounts {
  const passwd = readAccountFile(PASSWD_FILE);
  if (typeof passwd === 'string') return { problem: passwd };
  const group = readAccountFile(GROUP_FILE);
  if (typeof group === 'string') return { problem: group };
  const users = passwd.map((line) => line.split(':')).map(([name = '', , uid = '', gid = '']) => ({ name, uid: Number(uid), gid: Number(gid) }));
  const groups = group
    .map((line) => line.split(':'))
    .map(([name = '', , gid = '', members = '']) => ({ name, gid: Number(gid), members: members.split(',').map((m) => m.trim()).filter((m) => m !== '') }));
  return { users, groups };
}

/** `name (gid N)`, or `gid N` when the group has no name here. */
export function describeGroup(accounts: Accounts, gid: number): string {
  const name = 'groups' in accounts ? accounts.groups.find((g) => g.gid === gid)?.name : undefined;
  return name === undefined ? `gid ${gid}` : `${name} (gid ${gid})`;
}

/**
 * Why group `gid` is not the own group of user `uid` (so other users may
 * write where it may), or null when it is: `uid`'s primary group, nobody
 * else's primary group, and listing no member but `uid`.
 */
export function sharedGroupReason(accounts: Accounts, uid: number, gid: number): string | null {
  const group = describeGroup(accounts, gid);
  if ('problem' in accounts) return `whether others are in group ${group} cannot be told: ${accounts.problem}`;
  const owner = accounts.users.find((u) => u.uid === uid);
  if (owner === undefined) return `uid ${uid} is not in ${PASSWD_FILE}, so whether group ${group} is its own cannot be told`;
  if (owner.gid !== gid) return `group ${group} is not ${owner.name}'s own group (that is ${describeGroup(accounts, owner.gid)})`;
  const others = new Set<string>();
  for (const user of accounts.users) if (user.gid === gid && user.uid !== uid) others.add(user.name);
  for (const entry of accounts.groups) {
    if (entry.gid !== gid) continue;
    for (const member of entry.members) if (member !== owner.name) others.add(member);
  }
  if (others.size > 0) return `group ${group} has other members (${[...others].sort().join(', ')})`;
  return null;
}

/**
 * The write bits of `stat` that let users other than its owner change what is
 * inside (others', and the group's unless it is the owner's own), with why; null when none.
 */
export function unsafeWriteBits(accounts: Accounts, stat: Stats): { bits: number; why: string } | null {
  const mode = stat.mode & 0o777;
  const reasons: string[] = [];
  let bits = 0;
  if ((mode & 0o020) !== 0) {
    const shared = sharedGroupReason(accounts, stat.uid, stat.gid);
    if (shared !== null) {
      bits |= 0o020;
      reasons.push(`writable by its group, and ${shared}`);
    }
  }
  if ((mode & 0o002) !== 0) {
    bits |= 0o002;
    reasons.push('writable by others');
  }
  return bits === 0 ? null : { bits, why: reasons.join('; ') };
}

/** The chmod that takes `bits` away: `g-w`, `o-w` or `go-w`. */
export function chmodFor(bits: number): string {
  return `${(bits & 0o020) !== 0 ? 'g' : ''}${(bits & 0o002) !== 0 ? 'o' : ''}-w`;
}

/** `dir` and those of its ancestors that do not exist yet, outermost first. */
function missingDirs(io: FsLayer, dir: string): string[] {
  const missing: string[] = [];
  for (let at = dir; kindOf(io, at) === 'missing' && parentDir(at) !== at; at = parentDir(at)) missing.unshift(at);
  return missing;
}

function unsafeRoot(root: string, why: string): StepStoreError {
  return new StepStoreError('UNSAFE_ROOT', `refusing sessions root ${root}: ${why}`);
}

/**
 * Creates the root (mode 0700) when missing, durably. Refuses a root that is
 * a symlink, not a directory, owned by another user, writable by others, or
 * writable by a group other users are in; the error says which, and the fix.
 */
export async function vetRoot(ctx: FsContext): Promise<void> {
  const { fs: io, root } = ctx;
  let stat: Stats;
  try {
    stat = io.lstatSync(root);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw ioError(err, `checking sessions root ${root}`);
    try {
      const created = missingDirs(io, root);
      await io.ensureDir(root, DIR_MODE);
      io.chmodSync(root, DIR_MODE);
      // Each new directory exists for good only once the entry naming it is synced in its parent.
      for (const dir of created) await syncDir(ctx, 'storeFolders', parentDir(dir));
      stat = io.lstatSync(root);
    } catch (cause) {
      throw ioError(cause, `creating sessions root ${root}`);
    }
  }
  if (stat.isSymbolicLink()) throw unsafeRoot(root, 'it is a symlink; give the directory it points to instead');
  if (!stat.isDirectory()) throw unsafeRoot(root, 'it is not a directory');
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw unsafeRoot(root, `it is owned by uid ${stat.uid}, not by this process's user (uid ${uid}); run as its owner, or chown it`);
  }
  const mode = (stat.mode & 0o777).toString(8);
  if (uid === undefined) {
    // No user ids (Windows): the mode bits are all there is to go by.
    if ((stat.mode & 0o022) !== 0) throw unsafeRoot(root, `it is writable by group or others (mode ${mode}); chmod go-w ${root}`);
    return;
  }
  // The account files are read only when the group can write.
  const unsafe = (stat.mode & 0o022) === 0 ? null : unsafeWriteBits(readAccounts(), stat);
  if (unsafe !== null) throw unsafeRoot(root, `it is ${unsafe.why} (mode ${mode}); chmod ${chmodFor(unsafe.bits)} ${root}`);
}
