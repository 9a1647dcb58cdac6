/** Recipient domains' MTA-STS policies in SQLite (migration 13), so a restart does not forget them (RFC 8461 5.1). */
import type Database from 'better-sqlite3';
import type { StsPolicy, StsPolicyRepo } from '../types.js';
import { prep, type Row } from './rows.js';

export class SqliteStsPolicies implements StsPolicyRepo {
  constructor(
    private readonly db: Database.Database,
    /** Runs a write in its turn with the store's writer thread (the WriteGate). */
    private readonly turn: <T>(fn: () => T) => Promise<T> = async (fn) => fn(),
  ) {}

  async get(domain: string): Promise<StsPolicy | null> {
    const r = prep(this.db, 'SELECT * FROM mta_sts_policies WHERE domain = ?').get(domain) as Row | undefined;
    if (!r) return null;
    return { domain: r.domain as string, id: r.id as string, mode: r.mode as StsPolicy['mode'], mx: JSON.parse(r.mx as string) as string[], maxAge: r.max_age as number, fetchedAt: r.fetched_at as number };
  }

  async put(p: StsPolicy): Promise<void> {
    await this.turn(() =>
      prep(this.db, 'INSERT OR REPLACE INTO mta_sts_policies(domain, id, mode, mx, max_age, fetched_at) VALUES (?, ?, ?, ?, ?, ?)').run(p.domain, p.id, p.mode, JSON.stringify(p.mx), p.maxAge, p.fetchedAt),
    );
  }

  async delete(domain: string): Promise<void> {
    await this.turn(() => prep(this.db, 'DELETE FROM mta_sts_policies WHERE domain = ?').run(domain));
  }
}
