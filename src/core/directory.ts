/**
 * The directory: who is local, where a recipient's mail goes, who may log in, and as whom they may send.
 *
 * Recipient resolution order (what Postfix virtual maps, Mox and Stalwart users expect; existing accounts are
 * never swallowed by a catch-all):
 *   1. an alias for the exact address        4. an account for the address without its subaddress
 *   2. an account with the exact address     5. a catch-all alias "@domain"
 *   3. an alias for the address without its subaddress ("user+tag" -> "user")
 * Aliases expand recursively (depth 10, at most 1,000 targets); an alias target equal to its own source
 * means "also deliver to the account of that name".
 * Reads go to the store on every call, so changes made by the CLI in another process apply immediately.
 */
import { parseAddress, stripSubaddress, parseCatchAll } from '../lib/address.js';
import type { Account, DirectoryRepo } from '../storage/types.js';
import { hashPassword, needsRehash, verifyPassword } from './passwords.js';
import { AuthCache } from './auth-cache.js';

export interface Resolution {
  /** Local accounts that receive the message (deduplicated). */
  accounts: Account[];
  /** Addresses outside our domains the message must be forwarded to (deduplicated). */
  remote: string[];
}

export type RecipientResult =
  | { kind: 'local'; resolution: Resolution }
  | { kind: 'unknown' } // a local domain, but nobody of that name
  | { kind: 'remote' }; // not one of our domains

const MAX_DEPTH = 10;
const MAX_TARGETS = 1000;

export interface DirectoryOptions {
  recipientDelimiter: string;
  /** Successful logins remembered (core/auth-cache.ts); default: a cache of 10,000 entries for 1 hour. null: none. */
  authCache?: AuthCache | null;
}

export class Directory {
  private readonly authCache: AuthCache | null;
  constructor(
    private readonly repo: DirectoryRepo,
    private readonly opts: DirectoryOptions,
  ) {
    this.authCache = opts.authCache === undefined ? new AuthCache() : opts.authCache;
  }

  isLocalDomain(domain: string): Promise<boolean> {
    return this.repo.isLocalDomain(domain.toLowerCase());
  }

  async resolveRecipient(address: string): Promise<RecipientResult> {
    const p = parseAddress(address);
    if (!p) return { kind: 'unknown' };
    if (!(await this.repo.isLocalDomain(p.domain))) return { kind: 'remote' };
    const acc: Resolution = { accounts: [], remote: [] };
    const found = await this.expand(p.address, 0, acc, new Set());
    return found && (acc.accounts.length || acc.remote.length) ? { kind: 'local', resolution: acc } : { kind: 'unknown' };
  }

  /** Adds what `address` resolves to into `out`; false when it resolves to nothing. */
  private async expand(address: string, depth: number, out: Resolution, seen: Set<string>): Promise<boolean> {
    if (depth > MAX_DEPTH || seen.size > MAX_TARGETS) return false;
    const p = parseAddress(address);
    if (!p) return false;
    if (!(await this.repo.isLocalDomain(p.domain))) {
      if (!out.remote.includes(p.address)) out.remote.push(p.address);
      return true;
    }
    if (seen.has(p.address)) return true;
    seen.add(p.address);

    const candidates = [p.address];
    const base = stripSubaddress(p.local, this.opts.recipientDelimiter);
    if (base) candidates.push(`${base}@${p.domain}`);
    for (const cand of candidates) {
      const targets = await this.repo.aliasTargets(cand);
      if (targets.length) return this.expandTargets(cand, targets, depth, out, seen);
      const account = await this.repo.getAccount(cand);
      if (account) {
        addAccount(out, account);
        return true;
      }
    }
    const catchAll = await this.repo.aliasTargets(`@${p.domain}`);
    if (catchAll.length) return this.expandTargets(p.address, catchAll, depth, out, seen);
    return false;
  }

  private async expandTargets(source: string, targets: string[], depth: number, out: Resolution, seen: Set<string>): Promise<boolean> {
    let any = false;
    for (const t of targets) {
      if (t === source) {
        const account = await this.repo.getAccount(t);
        if (account) {
          addAccount(out, account);
          any = true;
        }
        continue;
      }
      if (await this.expand(t, depth + 1, out, seen)) any = true;
    }
    return any;
  }

  /**
   * Checks a password; returns the account or null. Constant work whether or not the account exists, except that
   * a login verified recently against the same stored hash skips argon2 (the auth cache; a password change
   * invalidates it because the stored hash changes).
   */
  async authenticate(username: string, password: string): Promise<Account | null> {
    const p = parseAddress(username);
    const account = p ? await this.repo.getAccount(p.address) : null;
    if (account && this.authCache?.hit(account.address, password, account.passwordHash)) return account;
    const ok = await verifyPassword(account?.passwordHash ?? DUMMY_HASH, password);
    if (!ok || !account) return null;
    if (needsRehash(account.passwordHash)) {
      // An imported (SHA512-CRYPT, BLF-CRYPT ...) hash: replace it with argon2id now that we know the password.
      const upgraded = await hashPassword(password);
      if (await this.repo.setPassword(account.address, upgraded)) account.passwordHash = upgraded;
    }
    this.authCache?.remember(account.address, password, account.passwordHash);
    return account;
  }

  accountById(id: number): Promise<Account | null> {
    return this.repo.getAccountById(id);
  }

  /**
   * May `account` use `sender` as MAIL FROM? Yes when mail to that address would reach the account: its own
   * address, a subaddress of it, an alias (or catch-all) it receives (docker-mailserver's SPOOF_PROTECTION).
   */
  async canSendAs(account: Account, sender: string): Promise<boolean> {
    const p = parseAddress(sender);
    if (!p) return false;
    if (p.address === account.address) return true;
    const r = await this.resolveRecipient(p.address);
    return r.kind === 'local' && r.resolution.accounts.some((a) => a.id === account.id);
  }

  static isCatchAll(source: string): boolean {
    return parseCatchAll(source) !== null;
  }
}

function addAccount(out: Resolution, a: Account): void {
  if (!out.accounts.some((x) => x.id === a.id)) out.accounts.push(a);
}

// A valid argon2id hash of a random password: verifying against it costs what a real check costs, so
// response timing does not reveal whether an account exists.
const DUMMY_HASH = '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$Vbe7Zz3ShYk2cZlZ3Jk1fMLyQkqOS9jBTlvBQBgOvd8';
