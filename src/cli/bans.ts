/**
 * `postern ban list|add|del` (Fail2Ban's fail2ban-client, for our built-in bans). Works on the same database as
 * the running server, which re-reads the ban table every second: changes apply without a restart.
 * Every failure is an AdminError with a one-line message.
 */
import { AdminError } from './admin.js';
import { banKey } from '../core/bans.js';
import { cidrContains } from '../net/cidr.js';
import { parseDuration } from '../lib/size.js';
import type { BanRepo } from '../storage/types.js';

export class BanAdmin {
  constructor(
    private readonly repo: BanRepo,
    private readonly opts: { defaultBanTimeMs: number; exempt: string[]; now?: () => number },
  ) {}

  private get now(): number {
    return (this.opts.now ?? Date.now)();
  }

  private ip(input: string): string {
    const key = banKey(input.trim());
    if (!key) throw new AdminError(`not an IP address: "${input}"`);
    return key;
  }

  async list(): Promise<string[]> {
    const bans = await this.repo.active(this.now);
    if (!bans.length) return ['no bans'];
    return bans.map((b) => `${b.ip}\tuntil ${new Date(b.until).toISOString()}\t${b.reason}`);
  }

  async add(input: string, time: string | undefined): Promise<string> {
    const ip = this.ip(input);
    if (cidrContains(this.opts.exempt, ip)) throw new AdminError(`${ip} is in [protection] ban_exempt and cannot be banned`);
    let ms = this.opts.defaultBanTimeMs;
    if (time !== undefined) {
      try {
        ms = parseDuration(time);
      } catch {
        throw new AdminError(`invalid --time "${time}" (expected e.g. 30m, 1h, 7d)`);
      }
      if (ms <= 0) throw new AdminError('--time must be positive');
    }
    const now = this.now;
    await this.repo.put({ ip, created: now, until: now + ms, reason: 'manual (postern ban add)' });
    return `banned ${ip} until ${new Date(now + ms).toISOString()}`;
  }

  async del(input: string): Promise<string> {
    const ip = this.ip(input);
    if (!(await this.repo.delete(ip))) throw new AdminError(`${ip} is not banned`);
    return `unbanned ${ip}`;
  }
}
