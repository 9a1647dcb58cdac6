/** Greylisting state in SQLite (migration 5): shared by the server and survives restarts. */
import type Database from 'better-sqlite3';
import type { GreylistRepo } from '../types.js';
import type { Row } from './rows.js';

export class SqliteGreylist implements GreylistRepo {
  constructor(
    private readonly db: Database.Database,
    /** Runs a write in its turn with the store's writer thread (SqliteStore.writeTurn): no busy-handler sleep here. */
    private readonly turn: <T>(fn: () => T) => Promise<T> = async (fn) => fn(),
  ) {}

  async touch(triplet: string, now: number): Promise<{ firstSeen: number; isNew: boolean }> {
    const inserted = await this.turn(() => this.db.prepare('INSERT INTO greylist_triplets(triplet, first_seen) VALUES (?, ?) ON CONFLICT(triplet) DO NOTHING').run(triplet, now).changes > 0);
    if (inserted) return { firstSeen: now, isNew: true };
    const r = this.db.prepare('SELECT first_seen FROM greylist_triplets WHERE triplet = ?').get(triplet) as Row | undefined;
    return { firstSeen: (r?.first_seen as number | undefined) ?? now, isNew: false };
  }

  async allowedUntil(network: string): Promise<number> {
    const r = this.db.prepare('SELECT until FROM greylist_networks WHERE network = ?').get(network) as Row | undefined;
    return (r?.until as number | undefined) ?? 0;
  }

  async allowNetwork(network: string, until: number): Promise<void> {
    await this.turn(() => this.db.prepare('INSERT INTO greylist_networks(network, until) VALUES (?, ?) ON CONFLICT(network) DO UPDATE SET until = max(until, excluded.until)').run(network, until));
  }

  async purge(tripletsBefore: number, now: number): Promise<number> {
    return this.turn(() =>
      this.db
        .transaction(() => this.db.prepare('DELETE FROM greylist_triplets WHERE first_seen < ?').run(tripletsBefore).changes + this.db.prepare('DELETE FROM greylist_networks WHERE until < ?').run(now).changes)
        .immediate(),
    );
  }
}
