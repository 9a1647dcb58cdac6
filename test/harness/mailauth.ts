/**
 * Signing and sealing test messages (mailauth's own signer) and the DNS records that publish the keys, for the
 * sender-authentication tests: DKIM RSA (RFC 6376) and Ed25519 (RFC 8463), ARC sets (RFC 8617).
 */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign, sealMessage } from 'mailauth';
import type { RecordSpec } from './dns-server.js';

export interface TestKey {
  algorithm: 'rsa-sha256' | 'ed25519-sha256';
  privateKey: string;
  /** The TXT record at <selector>._domainkey.<domain>. */
  txt: string;
}

export function rsaKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  return { algorithm: 'rsa-sha256', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), txt: `v=DKIM1; k=rsa; p=${p}` };
}

/** RFC 8463 4.2: the public key is the raw 32 bytes, base64. */
export function ed25519Key(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = publicKey.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64');
  return { algorithm: 'ed25519-sha256', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), txt: `v=DKIM1; k=ed25519; p=${raw}` };
}

export function keyRecord(key: TestKey): RecordSpec[] {
  return [{ type: 'TXT', data: key.txt }];
}

export function message(opts: { from: string; to: string; subject: string; body?: string; extraHeaders?: string[] }): string {
  return [
    `From: <${opts.from}>`,
    `To: <${opts.to}>`,
    `Subject: ${opts.subject}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@test>`,
    'Date: Mon, 1 Jan 2024 00:00:00 +0000',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    ...(opts.extraHeaders ?? []),
    '',
    opts.body ?? 'Hello there.\r\nThis is a test message.',
    '',
  ].join('\r\n');
}

export async function sign(raw: string, domain: string, selector: string, key: TestKey): Promise<string> {
  const data = { signingDomain: domain, selector, privateKey: key.privateKey, algorithm: key.algorithm };
  const r = await dkimSign(raw, { ...data, signatureData: [data] });
  if (r.errors.length) throw r.errors[0];
  return r.signatures + raw;
}

/** Adds an ARC set (a mailing list sealing what it received), recording `authResults` in its AAR. */
export async function seal(raw: string, domain: string, selector: string, key: TestKey, authResults: string, cv: 'none' | 'pass' = 'none'): Promise<string> {
  const headers = await sealMessage(raw, { signingDomain: domain, selector, privateKey: key.privateKey, algorithm: key.algorithm, authResults, cv } as never);
  return headers.toString() + raw;
}
