// The SQLite comparison: better-sqlite3, WAL, synchronous=FULL, one
// autocommitted INSERT per step (each one a durable transaction).

import path from 'node:path';
import Database from 'better-sqlite3';

export function openDb(dir, name = 'steps.db') {
  const db = new Database(path.join(dir, name));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(
    'CREATE TABLE IF NOT EXISTS steps (session TEXT NOT NULL, step INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (session, step))',
  );
  return db;
}

export function countRows(db, session) {
  return session === undefined
    ? db.prepare('SELECT count(*) AS n FROM steps').get().n
    : db.prepare('SELECT count(*) AS n FROM steps WHERE session = ?').get(session).n;
}

export function sqliteVersion() {
  try {
    const db = new Database(':memory:');
    const v = db.prepare('SELECT sqlite_version() AS v').get().v;
    db.close();
    return v;
  } catch {
    return null;
  }
}
