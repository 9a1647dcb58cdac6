/**
 * Email addresses as the server stores and compares them. Pure.
 *
 * Local parts are compared case-insensitively (as Postfix's virtual maps, Dovecot and docker-mailserver
 * do in practice), domains are lower-cased and IDNs are kept in their Unicode form (SMTPUTF8, RFC 6531)
 * after NFC normalisation. Quoted local parts are accepted only when the quoting was unnecessary.
 */

export interface ParsedAddress {
  local: string;
  domain: string;
  /** Canonical form: local@domain, both lower-case. */
  address: string;
}

// RFC 5322 3.2.3 atext, plus UTF-8 (RFC 6532 3.2) in local parts.
const DOT_ATOM_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\u0080-\uFFFF-]+)*$/;
// A domain name: labels of letters/digits/hyphens (or U-labels), no leading/trailing hyphen.
const DOMAIN_LABEL = /^(?!-)[A-Za-z0-9\u0080-\uFFFF-]{1,63}(?<!-)$/;

export function isValidDomain(domain: string): boolean {
  if (domain.length === 0 || domain.length > 253) return false;
  const labels = domain.split('.');
  if (labels.length < 2) return false;
  return labels.every((l) => DOMAIN_LABEL.test(l));
}

/** Parses "user@example.org" (no angle brackets, no display name). Returns null when malformed. */
export function parseAddress(input: string): ParsedAddress | null {
  const s = input.trim().normalize('NFC');
  if (s.length > 254) return null;
  const at = s.lastIndexOf('@');
  if (at <= 0 || at === s.length - 1) return null;
  let local = s.slice(0, at);
  const domain = s.slice(at + 1).toLowerCase();
  if (local.startsWith('"') && local.endsWith('"') && local.length > 2) local = local.slice(1, -1);
  if (local.length > 64 || !DOT_ATOM_LOCAL.test(local)) return null;
  if (!isValidDomain(domain)) return null;
  const l = local.toLowerCase();
  return { local: l, domain, address: `${l}@${domain}` };
}

/** A catch-all alias source is written "@domain". */
export function parseCatchAll(input: string): string | null {
  const s = input.trim().toLowerCase();
  if (!s.startsWith('@')) return null;
  const domain = s.slice(1);
  return isValidDomain(domain) ? domain : null;
}

/**
 * Strips a subaddress extension: "user+tag" -> "user" with delimiter "+". Several delimiter characters
 * may be configured (Postfix's recipient_delimiter semantics: any of the characters splits).
 */
export function stripSubaddress(local: string, delimiters: string): string | null {
  if (!delimiters) return null;
  for (let i = 1; i < local.length; i++) {
    if (delimiters.includes(local[i]!)) return local.slice(0, i);
  }
  return null;
}
