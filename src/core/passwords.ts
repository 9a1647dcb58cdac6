/**
 * Password hashing. Everything we create is argon2id (OWASP parameters: m=19 MiB, t=2, p=1).
 *
 * Imported hashes (docker-mailserver's postfix-accounts.cf, Dovecot passdb) are verified as they are:
 * SHA512-CRYPT / SHA256-CRYPT ($6$ / $5$, unixcrypt), BLF-CRYPT ($2y$ / $2b$ / $2a$, bcryptjs) and ARGON2I(D),
 * with or without Dovecot's "{SCHEME}" prefix. After a successful login with such a hash the caller re-hashes
 * the password with argon2id (needsRehash), so imported accounts migrate on first use.
 */
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import { verify as unixcryptVerify } from 'unixcrypt';

export async function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
}

/** Dovecot's scheme prefixes we understand, mapped to the crypt prefix the hash itself must carry. */
const SCHEMES: Record<string, RegExp> = {
  'SHA512-CRYPT': /^\$6\$/,
  'SHA256-CRYPT': /^\$5\$/,
  'BLF-CRYPT': /^\$2[aby]\$/,
  ARGON2ID: /^\$argon2id\$/,
  ARGON2I: /^\$argon2i\$/,
  CRYPT: /^\$[256][aby]?\$/,
};

/** Strips a "{SCHEME}" prefix; null when the scheme is one we cannot verify (PLAIN, MD5, SSHA ...). */
export function normalizeHash(stored: string): string | null {
  const m = /^\{([A-Z0-9.-]+)\}(.*)$/.exec(stored);
  if (!m) return isSupportedHash(stored) ? stored : null;
  const re = SCHEMES[m[1]!];
  return re && re.test(m[2]!) ? m[2]! : null;
}

function isSupportedHash(h: string): boolean {
  return /^\$argon2(id|i)\$/.test(h) || /^\$[56]\$/.test(h) || /^\$2[aby]\$\d\d\$/.test(h);
}

/** Verifies a password against a stored hash; false (never an exception) for unknown or broken formats. */
export async function verifyPassword(stored: string, password: string): Promise<boolean> {
  const hash = normalizeHash(stored);
  if (!hash) return false;
  try {
    if (hash.startsWith('$argon2')) return await argon2.verify(hash, password);
    if (hash.startsWith('$6$') || hash.startsWith('$5$')) return unixcryptVerify(password, hash);
    if (hash.startsWith('$2')) return await bcrypt.compare(password, hash.replace(/^\$2y\$/, '$2b$'));
  } catch {
    return false;
  }
  return false;
}

/** True for hashes that are not our own argon2id: re-hash after the next successful login. */
export function needsRehash(stored: string): boolean {
  return !stored.startsWith('$argon2id$');
}
