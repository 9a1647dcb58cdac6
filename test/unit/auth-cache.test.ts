import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuthCache } from '../../src/core/auth-cache.js';
import { Directory } from '../../src/core/directory.js';
import { hashPassword } from '../../src/core/passwords.js';
import { SqliteStore } from '../../src/storage/sqlite/store.js';
import { Admin } from '../../src/cli/admin.js';

describe('AuthCache', () => {
  it('hits only for the same address, password and stored hash, within the TTL', () => {
    let now = 1000;
    const c = new AuthCache({ ttlMs: 100, now: () => now });
    c.remember('a@x.test', 'pw', 'H1');
    assert.equal(c.hit('a@x.test', 'pw', 'H1'), true);
    assert.equal(c.hit('a@x.test', 'other', 'H1'), false);
    assert.equal(c.hit('b@x.test', 'pw', 'H1'), false);
    assert.equal(c.hit('a@x.test', 'pw', 'H2'), false, 'a changed password hash invalidates the entry');
    assert.equal(c.hit('a@x.test', 'pw', 'H1'), false, 'and removes it');
    c.remember('a@x.test', 'pw', 'H1');
    now += 100;
    assert.equal(c.hit('a@x.test', 'pw', 'H1'), false, 'expired');
  });

  it('keeps at most maxEntries, evicting the oldest', () => {
    const c = new AuthCache({ maxEntries: 2 });
    c.remember('a@x.test', '1', 'H');
    c.remember('b@x.test', '2', 'H');
    c.remember('c@x.test', '3', 'H');
    assert.equal(c.size, 2);
    assert.equal(c.hit('a@x.test', '1', 'H'), false);
    assert.equal(c.hit('c@x.test', '3', 'H'), true);
  });

  it('stores no password: keys are keyed hashes', () => {
    const c = new AuthCache();
    c.remember('a@x.test', 'secret password', 'H');
    const keys = [...(c as unknown as { entries: Map<string, unknown> }).entries.keys()];
    assert.ok(keys.every((k) => !k.includes('secret') && !k.includes('a@x.test')));
  });
});

describe('Directory.authenticate with the cache', () => {
  it('skips argon2 on a repeated login and notices a password change made through the store (CLI)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-authcache-'));
    const store = new SqliteStore({ dataDir: dir });
    try {
      const admin = new Admin(store, { defaultQuota: 0 });
      await admin.addEmail('alice@example.org', 'first password 1');
      const d = new Directory(store.directory, { recipientDelimiter: '+' });
      assert.ok(await d.authenticate('alice@example.org', 'first password 1'));
      const t0 = performance.now();
      for (let i = 0; i < 20; i++) assert.ok(await d.authenticate('alice@example.org', 'first password 1'));
      assert.ok(performance.now() - t0 < 200, 'cached logins cost no argon2 verification');
      assert.equal(await d.authenticate('alice@example.org', 'wrong password'), null);
      // Another process (the CLI) changes the password: the cached success must not let the old one in.
      await store.directory.setPassword('alice@example.org', await hashPassword('second password 2'));
      assert.equal(await d.authenticate('alice@example.org', 'first password 1'), null);
      assert.ok(await d.authenticate('alice@example.org', 'second password 2'));
      await store.directory.deleteAccount('alice@example.org');
      assert.equal(await d.authenticate('alice@example.org', 'second password 2'), null, 'a deleted account cannot log in from the cache');
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
