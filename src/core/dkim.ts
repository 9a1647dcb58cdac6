/**
 * DKIM (RFC 6376) and Ed25519 DKIM (RFC 8463): keys in data_dir/dkim/<domain>/<selector>.pem, the TXT record
 * to publish, and signing of outgoing mail for our domains.
 *
 * Where signing happens: in Delivery, once, before the message is stored (as OpenDKIM does as a milter at
 * submission time). The queued blob is then exactly what every retry sends, a bounce returns the signed
 * message, and no key is needed at send time. The signing domain (d=) is the RFC 5322 From domain (DMARC
 * alignment, RFC 7489 3.1.1); a message whose From domain has no key is not signed.
 *
 * Signature: relaxed/relaxed (RFC 6376 3.4.2, 3.4.4), rsa-sha256 and/or ed25519-sha256; h= is mailauth's
 * usual header set (From, Subject, Date, To, Cc, Message-ID, MIME headers, List-* ...) as present, plus one
 * extra "From" (oversigning, RFC 6376 8.15: a second From added in transit breaks the signature). With both
 * an RSA and an Ed25519 key for a domain, the message carries both signatures (RFC 8463 4: verifiers that
 * do not know Ed25519 use the RSA one). The newest key of each type (by file time) signs.
 * Canonicalisation and header selection come from mailauth@4's own DKIM code (the same code verifies).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseAddressList } from '../lib/mime/address.js';

const require = createRequire(import.meta.url);

interface ParsedHeader {
  key: string;
  casedKey: string;
  line: Buffer;
}
interface SigningLines {
  keys: string;
  headers: ParsedHeader[];
}
const tools = require('mailauth/lib/tools') as {
  parseHeaders(buf: Buffer): { parsed: ParsedHeader[] };
  getSigningHeaderLines(parsed: ParsedHeader[], fieldNames?: string): SigningLines;
  formatSignatureHeaderLine(type: string, values: Record<string, unknown>, folded: boolean): string;
  defaultDKIMFieldNames: string;
};
const { dkimBody } = require('mailauth/lib/dkim/body') as { dkimBody(canon: string, algorithm: string): { update(chunk: Buffer | null, final?: boolean): void; digest(enc: 'base64'): string } };
const { relaxedHeaders } = require('mailauth/lib/dkim/header/relaxed') as {
  relaxedHeaders(type: string, lines: SigningLines, options: Record<string, unknown>): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
};

export type DkimKeyType = 'rsa' | 'ed25519';

export interface DkimKey {
  domain: string;
  selector: string;
  type: DkimKeyType;
  key: KeyObject;
  mtime: number;
}

const SELECTOR_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** The DNS TXT record value for a private key (RFC 6376 3.6.1; RFC 8463 4 for k=ed25519). */
export function txtRecord(key: KeyObject): string {
  const pub = createPublicKey(key);
  if (key.asymmetricKeyType === 'ed25519') {
    // RFC 8463 4.2: p= is the raw 32-byte public key, not SubjectPublicKeyInfo.
    const raw = pub.export({ format: 'der', type: 'spki' }).subarray(-32);
    return `v=DKIM1; k=ed25519; p=${raw.toString('base64')}`;
  }
  return `v=DKIM1; k=rsa; p=${pub.export({ format: 'der', type: 'spki' }).toString('base64')}`;
}

/** A zone-file line: long values split into quoted strings of at most 255 bytes (RFC 1035 3.3.14). */
export function zoneLine(domain: string, selector: string, value: string): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += 255) parts.push(`"${value.slice(i, i + 255)}"`);
  return `${selector}._domainkey.${domain}. IN TXT ( ${parts.join(' ')} )`;
}

export class DkimKeys {
  constructor(
    private readonly dir: string,
    private readonly now: () => number = Date.now,
  ) {}

  /** Generates a key pair and stores the private key; returns the key and its TXT record. */
  async generate(domain: string, opts: { selector?: string; type?: DkimKeyType; bits?: number } = {}): Promise<{ file: string; selector: string; record: string; zone: string }> {
    const type = opts.type ?? 'rsa';
    const d = domain.toLowerCase();
    const ym = new Date(this.now()).toISOString().slice(0, 7).replace('-', '');
    const selector = (opts.selector ?? `${type === 'rsa' ? 'rsa' : 'ed'}${ym}`).toLowerCase();
    if (!SELECTOR_RE.test(selector)) throw new Error(`invalid selector "${selector}" (letters, digits and "-")`);
    if (!/^[a-z0-9.-]+$/.test(d) || d.includes('..')) throw new Error(`invalid domain "${domain}"`);
    const bits = opts.bits ?? 2048;
    if (type === 'rsa' && (bits < 1024 || bits > 8192)) throw new Error('--bits must be between 1024 and 8192 (RFC 8301: at least 1024, 2048 recommended)');
    const pair = type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519');
    const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const dir = path.join(this.dir, d);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `${selector}.pem`);
    try {
      await writeFile(file, pem, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new Error(`a key with selector "${selector}" already exists for ${d} (${file})`);
      throw err;
    }
    const record = txtRecord(pair.privateKey);
    return { file, selector, record, zone: zoneLine(d, selector, record) };
  }

  /** All keys of a domain. */
  async list(domain: string): Promise<DkimKey[]> {
    const d = domain.toLowerCase();
    const dir = path.join(this.dir, d);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return [];
    }
    const out: DkimKey[] = [];
    for (const n of names) {
      if (!n.endsWith('.pem')) continue;
      const file = path.join(dir, n);
      const key = createPrivateKey(await readFile(file));
      const t = key.asymmetricKeyType;
      if (t !== 'rsa' && t !== 'ed25519') continue;
      out.push({ domain: d, selector: n.slice(0, -4), type: t, key, mtime: (await stat(file)).mtimeMs });
    }
    return out;
  }

  /** The newest key of each type for a domain (what signs). */
  async signingKeys(domain: string): Promise<DkimKey[]> {
    const best = new Map<DkimKeyType, DkimKey>();
    for (const k of await this.list(domain)) {
      const cur = best.get(k.type);
      if (!cur || k.mtime > cur.mtime || (k.mtime === cur.mtime && k.selector > cur.selector)) best.set(k.type, k);
    }
    // RSA first: the Ed25519 signature ends up on top, as in RFC 8463's example.
    return [best.get('rsa'), best.get('ed25519')].filter((k): k is DkimKey => !!k);
  }
}

/** The domain of the (first) RFC 5322 From address, lower-case, or null. */
export function fromDomain(raw: Buffer): string | null {
  const end = raw.indexOf('\r\n\r\n');
  const head = (end < 0 ? raw : raw.subarray(0, end + 2)).toString('latin1');
  const m = /(?:^|\r\n)From:((?:[^\r]|\r\n[ \t])*)/i.exec(head);
  if (!m) return null;
  const list = parseAddressList(m[1]!.replace(/\r\n/g, ''));
  const host = list.find((a) => a.host)?.host;
  return host ? host.toLowerCase() : null;
}

/** Computes DKIM-Signature header fields (CRLF-terminated, to be prepended) for `raw` with the given keys. */
export function dkimSignatures(raw: Buffer, keys: DkimKey[], signTime: Date): Buffer {
  if (!keys.length) return Buffer.alloc(0);
  const end = raw.indexOf('\r\n\r\n');
  const header = end < 0 ? raw : raw.subarray(0, end + 2);
  const body = end < 0 ? Buffer.alloc(0) : raw.subarray(end + 4);
  const parsed = tools.parseHeaders(header).parsed;
  const lines = tools.getSigningHeaderLines(parsed, tools.defaultDKIMFieldNames);
  // Oversign From (RFC 6376 8.15): list it once more than it occurs; the extra instance signs "absent".
  const signing: SigningLines = parsed.some((h) => h.key === 'from') ? { keys: `${lines.keys}: From`, headers: lines.headers } : lines;
  const bodyHasher = dkimBody('relaxed', 'sha256');
  bodyHasher.update(body);
  const bodyHash = bodyHasher.digest('base64');
  const out: string[] = [];
  for (const k of keys) {
    const algorithm = k.type === 'rsa' ? 'rsa-sha256' : 'ed25519-sha256';
    const { canonicalizedHeader, dkimHeaderOpts } = relaxedHeaders('DKIM', signing, {
      signingDomain: k.domain,
      selector: k.selector,
      algorithm,
      canonicalization: 'relaxed/relaxed',
      bodyHash,
      signTime,
    });
    // RFC 8463 3: Ed25519 signs the SHA-256 hash of the canonicalised header.
    const sig = k.type === 'rsa' ? cryptoSign('sha256', canonicalizedHeader, k.key) : cryptoSign(null, createHash('sha256').update(canonicalizedHeader).digest(), k.key);
    out.push(tools.formatSignatureHeaderLine('DKIM', { ...dkimHeaderOpts, b: sig.toString('base64') }, true));
  }
  return Buffer.from(out.join('\r\n') + '\r\n', 'latin1');
}

/** Signs outgoing mail for domains that have keys. */
export class DkimSigner {
  constructor(
    private readonly keys: DkimKeys,
    private readonly now: () => number = Date.now,
  ) {}

  /** The message with DKIM-Signature fields prepended, or unchanged when its From domain has no key. */
  async sign(raw: Buffer): Promise<{ raw: Buffer; domain: string | null; selectors: string[] }> {
    const domain = fromDomain(raw);
    if (!domain) return { raw, domain: null, selectors: [] };
    const keys = await this.keys.signingKeys(domain);
    if (!keys.length) return { raw, domain, selectors: [] };
    const sigs = dkimSignatures(raw, keys, new Date(this.now()));
    return { raw: Buffer.concat([sigs, raw]), domain, selectors: keys.map((k) => k.selector) };
  }
}
