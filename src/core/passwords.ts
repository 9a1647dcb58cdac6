/** Password hashing: argon2id for everything we create (OWASP parameters: m=19 MiB, t=2, p=1). */
import argon2 from 'argon2';

export async function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 });
}

/** Verifies a password against a stored hash; false (never an exception) for unknown formats. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    if (hash.startsWith('$argon2')) return await argon2.verify(hash, password);
  } catch {
    return false;
  }
  return false;
}
