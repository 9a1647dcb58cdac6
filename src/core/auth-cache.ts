/**
 * Authentication cache (what Dovecot's auth_cache does): a successful password check is remembered, so a client
 * that logs in again and again (IMAP clients open several connections, phones reconnect) costs a SHA-256
 * instead of an argon2id verification (~20 MiB and tens of milliseconds of CPU each).
 *
 * Invariants:
 * - Keys are HMAC-SHA256 over (address, password) with a random secret made at start and never stored:
 *   neither passwords nor unsalted hashes of them are kept in memory.
 * - An entry is valid only for the password hash it was verified against: the caller passes the account's
 *   current hash (read from the store on every login), so a password change, made by the CLI in another
 *   process too, invalidates the entry at once. Deleted accounts never reach the cache.
 * - Only successes are cached; failures always pay the full verification (and the failure delay).
 * - Bounded: at most maxEntries (oldest evicted first) and ttlMs per entry.
 */
import { createHmac, randomBytes } from 'node:crypto';

export interface AuthCacheOptions {
  maxEntries?: number;
  ttlMs?: number;
  now?: () => number;
}

interface Entry {
  passwordHash: string;
  expires: number;
}

export class AuthCache {
  private readonly secret = randomBytes(32);
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: AuthCacheOptions = {}) {
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.ttlMs = opts.ttlMs ?? 60 * 60_000;
    this.now = opts.now ?? Date.now;
  }

  private key(address: string, password: string): string {
    return createHmac('sha256', this.secret).update(address).update('\0').update(password).digest('base64');
  }

  /** True when this address and password were verified against exactly this stored hash, recently. */
  hit(address: string, password: string, passwordHash: string): boolean {
    const k = this.key(address, password);
    const e = this.entries.get(k);
    if (!e) return false;
    if (e.passwordHash !== passwordHash || e.expires <= this.now()) {
      this.entries.delete(k);
      return false;
    }
    return true;
  }

  /** Remembers a successful verification of password against passwordHash. */
  remember(address: string, password: string, passwordHash: string): void {
    const k = this.key(address, password);
    this.entries.delete(k);
    this.entries.set(k, { passwordHash, expires: this.now() + this.ttlMs });
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  get size(): number {
    return this.entries.size;
  }
}
