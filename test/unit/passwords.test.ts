import { it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { hashPassword, verifyPassword, normalizeHash, needsRehash } from '../../src/core/passwords.js';

it('verifies argon2id hashes we create, and nothing else', async () => {
  const h = await hashPassword('s3cret password');
  assert.match(h, /^\$argon2id\$v=19\$m=19456,(t=2,p=1|p=1,t=2)\$/);
  assert.equal(await verifyPassword(h, 's3cret password'), true);
  assert.equal(await verifyPassword(h, 's3cret passworD'), false);
  assert.equal(needsRehash(h), false);
});

it('verifies imported SHA512-CRYPT and SHA256-CRYPT hashes made by openssl, with or without the Dovecot prefix', async () => {
  const h6 = execFileSync('openssl', ['passwd', '-6', 'imported pw'], { encoding: 'utf8' }).trim();
  const h5 = execFileSync('openssl', ['passwd', '-5', 'imported pw'], { encoding: 'utf8' }).trim();
  for (const h of [h6, `{SHA512-CRYPT}${h6}`, h5, `{SHA256-CRYPT}${h5}`, `{CRYPT}${h6}`]) {
    assert.equal(await verifyPassword(h, 'imported pw'), true, h);
    assert.equal(await verifyPassword(h, 'imported px'), false, h);
    assert.equal(needsRehash(h), true);
  }
});

it('refuses schemes it cannot verify and prefixes that do not match the hash', async () => {
  for (const h of ['{PLAIN}secret', '{MD5}abc', '{SSHA}xyz', 'secret', '{SHA512-CRYPT}$5$abc$def', '$1$md5crypt$xyz', '']) {
    assert.equal(normalizeHash(h), null, h);
    assert.equal(await verifyPassword(h, 'secret'), false, h);
  }
});
