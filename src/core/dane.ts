/**
 * DANE for SMTP (RFC 7672): TLSA records at `_25._tcp.<mx host>`, DNSSEC-validated, say which certificate an MX
 * host presents; a sender that finds them delivers only over TLS to a host whose certificate matches, and never
 * in the clear.
 * - Usable records (3.1.3): DANE-TA(2) and DANE-EE(3), selector Cert(0) or SPKI(1), matching Full(0),
 *   SHA2-256(1) or SHA2-512(2). PKIX-TA(0) and PKIX-EE(1) are not used for SMTP.
 * - DANE-EE (3.1.1): the leaf certificate (or its key) matches; no name check and no expiry check.
 * - DANE-TA (3.1.2): a certificate of the presented chain above the leaf matches; the leaf must chain to it
 *   (signatures checked here) and carry the MX host's name (3.2.2).
 * - Only usable-less records: TLS is still required, not authenticated (2.2).
 */
import { createHash, X509Certificate } from 'node:crypto';
import type { TlsaRecord as Tlsa } from '../lib/dns/resolver.js';

export type { Tlsa };

export function usableTlsa(records: Tlsa[]): Tlsa[] {
  return records.filter((r) => (r.usage === 2 || r.usage === 3) && (r.selector === 0 || r.selector === 1) && r.matchingType >= 0 && r.matchingType <= 2);
}

/** The data a TLSA record of this selector and matching type holds for `cert`. */
export function association(cert: X509Certificate, selector: number, matchingType: number): Buffer {
  const data = selector === 0 ? cert.raw : cert.publicKey.export({ type: 'spki', format: 'der' });
  if (matchingType === 1) return createHash('sha256').update(data).digest();
  if (matchingType === 2) return createHash('sha512').update(data).digest();
  return data;
}

/**
 * Whether the presented chain (leaf first, as DER) satisfies one of the usable records for `host`; with the
 * reason when it does not.
 */
export function daneMatch(records: Tlsa[], chainDer: Buffer[], host: string): { ok: boolean; why: string } {
  const chain = chainDer.map((d) => new X509Certificate(d));
  const leaf = chain[0];
  if (!leaf) return { ok: false, why: 'no certificate presented' };
  const is = (r: Tlsa, c: X509Certificate) => association(c, r.selector, r.matchingType).equals(r.data);
  for (const r of usableTlsa(records)) {
    if (r.usage === 3 && is(r, leaf)) return { ok: true, why: 'DANE-EE' };
    if (r.usage !== 2) continue;
    for (let i = 1; i < chain.length; i++) {
      if (!is(r, chain[i]!)) continue;
      // The leaf must chain up to this trust anchor through the certificates presented below it.
      let signed = true;
      for (let k = 0; k < i; k++) if (!chain[k]!.checkIssued(chain[k + 1]!) || !chain[k]!.verify(chain[k + 1]!.publicKey)) signed = false;
      if (!signed) return { ok: false, why: 'the chain does not lead to the DANE-TA certificate' };
      if (!leaf.checkHost(host)) return { ok: false, why: `the certificate is not for ${host}` };
      return { ok: true, why: 'DANE-TA' };
    }
  }
  return { ok: false, why: 'no TLSA record matches the certificate' };
}
