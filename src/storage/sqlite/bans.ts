/** The ban list in SQLite: one row per banned address; the server and `postern ban` share it. */
import type Database from 'better-sqlite3';
import type { Ban, BanRepo } from '../types.js';
import type { Row } from './rows.js';

const banFrom = (r: Row): Ban => ({ ip: r.ip as string, created: r.created as number, until: r.until as number, reason: r.reason as string });

export class SqliteBans implements BanRepo {
  constructor(
    private readonly db: Database.Database,
    /** Runs a write in its turn with the store's writer thread (the WriteGate): no busy-handler sleep here. */
    private readonly turn: <T>(fn: () => T) => Promise<T> = async (fn) => fn(),
  ) {}

  async put(ban: Ban): Promise<void> {
    await this.turn(() =>
      this.db
        .prepare('INSERT INTO bans(ip, created, until, reason) VALUES (?, ?, ?, ?) ON CONFLICT(ip) DO UPDATE SET created = excluded.created, until = excluded.until, reason = excluded.reason')
        .run(ban.ip, ban.created, ban.until, ban.reason),
    );
  }

  async delete(ip: string): Promise<boolean> {
    return this.turn(() => this.db.prepare('DELETE FROM bans WHERE ip = ?').run(ip).changes > 0);
  }

  async active(now: number): Promise<Ban[]> {
    return (this.db.prepare('SELECT * FROM bans WHERE until > ? ORDER BY until, ip').all(now) as Row[]).map(banFrom);
  }

  async purge(now: number): Promise<number> {
    return this.turn(() => this.db.prepare('DELETE FROM bans WHERE until <= ?').run(now).changes);
  }
}
