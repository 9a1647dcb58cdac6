/**
 * Import from docker-mailserver's config directory (docker-data/dms/config/):
 *   postfix-accounts.cf  "user@domain|{SHA512-CRYPT}$6$..."   accounts with their existing password hashes
 *   postfix-virtual.cf   "alias@domain target1,target2"      aliases ("@domain target" = catch-all)
 *   dovecot-quotas.cf    "user@domain:500M"                  quotas
 * Hashes are kept as they are (verified by core/passwords.ts, upgraded to argon2id at the next login).
 * Existing accounts and aliases are skipped, never overwritten. Regular-expression aliases
 * (postfix-regexp.cf) have no equivalent and are reported.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Admin, AdminError } from './admin.js';

export interface ImportReport {
  imported: string[];
  skipped: string[];
  failed: string[];
}

const emptyReport = (): ImportReport => ({ imported: [], skipped: [], failed: [] });

function lines(text: string): { n: number; line: string }[] {
  return text
    .split(/\r?\n/)
    .map((line, i) => ({ n: i + 1, line: line.trim() }))
    .filter((l) => l.line && !l.line.startsWith('#'));
}

async function each(r: ImportReport, label: string, fn: () => Promise<string>): Promise<void> {
  try {
    r.imported.push(await fn());
  } catch (err) {
    const msg = (err as Error).message;
    if (err instanceof AdminError && /already exists/.test(msg)) r.skipped.push(`${label}: ${msg}`);
    else r.failed.push(`${label}: ${msg}`);
  }
}

export async function importAccounts(admin: Admin, text: string, file: string): Promise<ImportReport> {
  const r = emptyReport();
  for (const { n, line } of lines(text)) {
    const [address, hash] = line.split('|');
    await each(r, `${file}:${n}`, () => (hash ? admin.importEmail(address!, hash) : Promise.reject(new AdminError('expected "address|{SCHEME}hash"'))));
  }
  return r;
}

export async function importAliases(admin: Admin, text: string, file: string): Promise<ImportReport> {
  const r = emptyReport();
  for (const { n, line } of lines(text)) {
    const [source, ...rest] = line.split(/\s+/);
    const targets = rest.join(' ').split(/[,\s]+/).filter(Boolean);
    if (!targets.length) {
      r.failed.push(`${file}:${n}: expected "alias target[,target...]"`);
      continue;
    }
    for (const t of targets) await each(r, `${file}:${n}`, () => admin.addAlias(source!, t));
  }
  return r;
}

export async function importQuotas(admin: Admin, text: string, file: string): Promise<ImportReport> {
  const r = emptyReport();
  for (const { n, line } of lines(text)) {
    const i = line.lastIndexOf(':');
    await each(r, `${file}:${n}`, () => (i > 0 ? admin.setQuota(line.slice(0, i), line.slice(i + 1)) : Promise.reject(new AdminError('expected "address:size"'))));
  }
  return r;
}

/** Everything found in a docker-mailserver config directory. */
export async function importDms(admin: Admin, dir: string): Promise<ImportReport> {
  const total = emptyReport();
  const steps: [string, typeof importAccounts][] = [
    ['postfix-accounts.cf', importAccounts],
    ['postfix-virtual.cf', importAliases],
    ['dovecot-quotas.cf', importQuotas],
  ];
  let found = 0;
  for (const [name, fn] of steps) {
    const file = path.join(dir, name);
    if (!existsSync(file)) continue;
    found++;
    const r = await fn(admin, readFileSync(file, 'utf8'), file);
    total.imported.push(...r.imported);
    total.skipped.push(...r.skipped);
    total.failed.push(...r.failed);
  }
  if (!found) throw new AdminError(`${dir} holds none of postfix-accounts.cf, postfix-virtual.cf, dovecot-quotas.cf`);
  if (existsSync(path.join(dir, 'postfix-regexp.cf'))) total.failed.push(`${path.join(dir, 'postfix-regexp.cf')}: regular-expression aliases are not supported; add them with "postern alias add"`);
  return total;
}
