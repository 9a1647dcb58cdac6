/**
 * Brute-force bans (Fail2Ban's job, built in). Authentication failures from every protocol arrive through
 * AuthLimiter's onFailure hook; `ban_after_failures` failures from one address within `ban_window` ban it for
 * `ban_time`. Listeners ask `admit(ip)` on every new connection (all protocols), before a single byte is read.
 *
 * Invariants:
 *  - an address in `exempt` is never banned, neither by counting nor by `admit` (a ban row added by hand for
 *    it is ignored), so an operator cannot lock out the networks they declared safe;
 *  - the ban table (BanRepo) is the truth: bans survive restarts, and `postern ban add|del` from another
 *    process takes effect within `refreshMs` because the in-memory set is reloaded from it periodically;
 *  - `admit` is synchronous and allocation-free on the hot path (a Map lookup); expired bans lapse there even
 *    before the next reload.
 */
import type { Ban, BanRepo } from '../storage/types.js';
import { canonicalIp, cidrContains, type Cidr } from '../net/cidr.js';

export interface BanSettings {
  /** false ([protection] enabled = false): nothing is counted and no ban is enforced. */
  enabled: boolean;
  /** Failures within the window that trigger a ban; 0 disables automatic bans. */
  afterFailures: number;
  windowMs: number;
  banTimeMs: number;
  exempt: readonly Cidr[];
}

export interface BanListDeps {
  repo: BanRepo;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
  now?: () => number;
  /** How often the ban table is re-read (CLI changes, other nodes). */
  refreshMs?: number;
}

/** How many addresses with recent failures are tracked at most (memory bound under a distributed attack). */
const MAX_TRACKED = 100_000;

/** The IP as stored and compared: canonical text, IPv4-mapped IPv6 unwrapped. */
export function banKey(ip: string): string | null {
  const v = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  return canonicalIp(v);
}

export class BanList {
  private bans = new Map<string, Ban>();
  private readonly failures = new Map<string, number[]>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(
    private settings: BanSettings,
    private readonly deps: BanListDeps,
  ) {
    this.now = deps.now ?? Date.now;
  }

  /** Loads the table (bans from before a restart) and starts the periodic reload. */
  async start(): Promise<void> {
    await this.deps.repo.purge(this.now());
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'ban list reload failed')), this.deps.refreshMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  updateSettings(settings: BanSettings): void {
    this.settings = settings;
  }

  async refresh(): Promise<void> {
    const next = new Map<string, Ban>();
    for (const b of await this.deps.repo.active(this.now())) next.set(b.ip, b);
    this.bans = next;
  }

  isExempt(ip: string): boolean {
    return cidrContains(this.settings.exempt, ip);
  }

  /** The listener's admission check: false = banned, close the connection. */
  admit(ip: string): boolean {
    if (this.bans.size === 0 || !this.settings.enabled) return true;
    const key = banKey(ip);
    if (!key) return true;
    const b = this.bans.get(key);
    if (!b) return true;
    if (b.until <= this.now()) {
      this.bans.delete(key);
      return true;
    }
    return this.isExempt(key);
  }

  /** AuthLimiter.onFailure: counts a failure; bans the address when it crosses the threshold. */
  onFailure(ip: string): void {
    const s = this.settings;
    if (!s.enabled || s.afterFailures <= 0) return;
    const key = banKey(ip);
    if (!key || this.isExempt(key)) return;
    const now = this.now();
    let list = this.failures.get(key);
    if (!list) {
      if (this.failures.size >= MAX_TRACKED) this.prune(now);
      list = [];
      this.failures.set(key, list);
    }
    list.push(now);
    while (list.length && now - list[0]! > s.windowMs) list.shift();
    if (list.length > s.afterFailures) list.splice(0, list.length - s.afterFailures);
    if (list.length < s.afterFailures) return;
    this.failures.delete(key);
    const reason = `${s.afterFailures} authentication failures within ${Math.round(s.windowMs / 1000)}s`;
    const ban: Ban = { ip: key, created: now, until: now + s.banTimeMs, reason };
    this.bans.set(key, ban);
    this.deps.log.warn({ remote: key, until: new Date(ban.until).toISOString(), reason }, 'address banned');
    this.deps.repo.put(ban).catch((err) => this.deps.log.warn({ remote: key, err: (err as Error).message }, 'ban not persisted'));
  }

  /** Bans in force now. */
  list(): Ban[] {
    const now = this.now();
    return [...this.bans.values()].filter((b) => b.until > now);
  }

  private prune(now: number): void {
    for (const [ip, l] of this.failures) if (!l.length || now - l[l.length - 1]! > this.settings.windowMs) this.failures.delete(ip);
    if (this.failures.size >= MAX_TRACKED) this.failures.clear();
  }
}
