/**
 * Account, alias and quota administration (the `postern email|alias|quota` verbs). Works on the same data
 * directory as a running server; the server reads the directory on every lookup, so changes apply at once.
 * Every failure is an AdminError with a one-line, user-facing message.
 */
import { parseAddress, parseCatchAll } from '../lib/address.js';
import { formatSize, parseSize } from '../lib/size.js';
import { hashPassword, normalizeHash } from '../core/passwords.js';
import type { Store, SpecialUse } from '../storage/types.js';

export class AdminError extends Error {
  override name = 'AdminError';
}

/** Mailboxes every new account gets (RFC 6154 special-use roles). */
export const DEFAULT_MAILBOXES: { name: string; specialUse: SpecialUse | null }[] = [
  { name: 'INBOX', specialUse: null },
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Junk', specialUse: '\\Junk' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Archive', specialUse: '\\Archive' },
];

const MIN_PASSWORD = 8;

function address(input: string): { address: string; domain: string } {
  const p = parseAddress(input);
  if (!p) throw new AdminError(`malformed email address "${input}" (expected user@example.org)`);
  return p;
}

function checkPassword(pw: string): void {
  if (pw.length < MIN_PASSWORD) throw new AdminError(`password too short (at least ${MIN_PASSWORD} characters)`);
  if (/[\r\n\0]/.test(pw)) throw new AdminError('password must not contain line breaks or NUL');
}

export class Admin {
  constructor(
    private readonly store: Store,
    private readonly opts: { defaultQuota: number },
  ) {}

  async addEmail(addr: string, password: string): Promise<string> {
    const a = address(addr);
    checkPassword(password);
    if ((await this.store.directory.aliasTargets(a.address)).length) throw new AdminError(`${a.address} is already an alias; delete the alias first`);
    const created = await this.store.directory.createAccount(
      { address: a.address, domain: a.domain, passwordHash: await hashPassword(password), quotaBytes: this.opts.defaultQuota },
      DEFAULT_MAILBOXES,
    );
    if (!created) throw new AdminError(`account ${a.address} already exists`);
    return a.address;
  }

  /** An account with an existing hash (docker-mailserver / Dovecot); upgraded to argon2id at its next login. */
  async importEmail(addr: string, storedHash: string): Promise<string> {
    const a = address(addr);
    if (!normalizeHash(storedHash.trim())) throw new AdminError(`unsupported password scheme for ${a.address} (supported: SHA512-CRYPT, SHA256-CRYPT, BLF-CRYPT, ARGON2I, ARGON2ID)`);
    const created = await this.store.directory.createAccount(
      { address: a.address, domain: a.domain, passwordHash: storedHash.trim(), quotaBytes: this.opts.defaultQuota },
      DEFAULT_MAILBOXES,
    );
    if (!created) throw new AdminError(`account ${a.address} already exists`);
    return a.address;
  }

  async updateEmail(addr: string, password: string): Promise<string> {
    const a = address(addr);
    checkPassword(password);
    if (!(await this.store.directory.setPassword(a.address, await hashPassword(password)))) throw new AdminError(`no account ${a.address}`);
    return a.address;
  }

  async delEmail(addr: string): Promise<string> {
    const a = address(addr);
    if (!(await this.store.directory.deleteAccount(a.address))) throw new AdminError(`no account ${a.address}`);
    return a.address;
  }

  async listEmail(): Promise<string[]> {
    const accounts = await this.store.directory.listAccounts();
    const aliases = await this.store.directory.listAliases();
    return accounts.map((a) => {
      const quota = a.quotaBytes > 0 ? formatSize(a.quotaBytes) : '~';
      const pct = a.quotaBytes > 0 ? Math.floor((a.usedBytes * 100) / a.quotaBytes) : 0;
      const mine = aliases.filter((x) => x.target === a.address).map((x) => x.source);
      const line = `* ${a.address} ( ${formatSize(a.usedBytes)} / ${quota} ) [${pct}%] ${a.messageCount} message${a.messageCount === 1 ? '' : 's'}`;
      return mine.length ? `${line}\n    [ aliases -> ${mine.join(', ')} ]` : line;
    });
  }

  async addAlias(source: string, target: string): Promise<string> {
    const src = parseCatchAll(source) ? source.trim().toLowerCase() : address(source).address;
    const dst = address(target).address;
    if (src === dst) throw new AdminError('an alias cannot point to itself');
    if (!src.startsWith('@') && (await this.store.directory.getAccount(src))) {
      // Allowed (Postfix semantics: the alias replaces delivery), but say so.
      process.stderr.write(`warning: ${src} is also an account; mail to it now goes to the alias targets only (add ${src} as a target to keep a copy)\n`);
    }
    if (!(await this.store.directory.addAlias(src, dst))) throw new AdminError(`alias ${src} -> ${dst} already exists`);
    return `${src} -> ${dst}`;
  }

  async delAlias(source: string, target: string): Promise<string> {
    const src = parseCatchAll(source) ? source.trim().toLowerCase() : address(source).address;
    const dst = address(target).address;
    if (!(await this.store.directory.deleteAlias(src, dst))) throw new AdminError(`no alias ${src} -> ${dst}`);
    return `${src} -> ${dst}`;
  }

  async listAlias(): Promise<string[]> {
    return (await this.store.directory.listAliases()).map((a) => `* ${a.source} ${a.target}`);
  }

  async setQuota(addr: string, size: string): Promise<string> {
    const a = address(addr);
    let bytes: number;
    try {
      bytes = parseSize(size);
    } catch (err) {
      throw new AdminError((err as Error).message);
    }
    if (!(await this.store.directory.setQuota(a.address, bytes))) throw new AdminError(`no account ${a.address}`);
    return `${a.address} ${bytes > 0 ? formatSize(bytes) : 'unlimited'}`;
  }

  async delQuota(addr: string): Promise<string> {
    const a = address(addr);
    if (!(await this.store.directory.setQuota(a.address, 0))) throw new AdminError(`no account ${a.address}`);
    return `${a.address} unlimited`;
  }

  async listDomains(): Promise<string[]> {
    return (await this.store.directory.listDomains()).map((d) => d.name);
  }
}
