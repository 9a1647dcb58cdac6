/** DANE TLSA matching (RFC 7672 3.1): usable records, selectors and matching types, DANE-TA chains and names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { association, daneMatch, usableTlsa } from '../../src/core/dane.js';
import { makePki } from '../harness/pki.js';

test('TLSA matching: DANE-EE by certificate or key, full or hashed; DANE-TA through the chain with the MX name', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'postern-dane-unit-'));
  try {
    const p = makePki(dir, ['mx.example.test']);
    const leaf = new X509Certificate(p.certs['mx.example.test']!.cert);
    const ca = new X509Certificate(readFileSync(p.ca));
    const other = new X509Certificate(makePki(mkdtempSync(path.join(dir, 'o-')), ['other.test']).certs['other.test']!.cert);
    const chain = [leaf.raw, ca.raw];
    const rec = (usage: number, selector: number, matchingType: number, cert: X509Certificate) => ({ usage, selector, matchingType, data: association(cert, selector, matchingType) });

    assert.equal(association(leaf, 0, 0).equals(leaf.raw), true);
    assert.equal(association(leaf, 1, 1).equals(createHash('sha256').update(leaf.publicKey.export({ type: 'spki', format: 'der' })).digest()), true);
    for (const [s, m] of [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]] as const) {
      assert.deepEqual(daneMatch([rec(3, s, m, leaf)], [leaf.raw], 'any.name'), { ok: true, why: 'DANE-EE' }, `3 ${s} ${m}`);
    }
    assert.equal(daneMatch([rec(3, 1, 1, other)], chain, 'mx.example.test').ok, false, 'another key');
    assert.deepEqual(daneMatch([rec(2, 0, 1, ca)], chain, 'mx.example.test'), { ok: true, why: 'DANE-TA' });
    assert.equal(daneMatch([rec(2, 0, 1, ca)], chain, 'mx.other.test').why, 'the certificate is not for mx.other.test');
    assert.equal(daneMatch([rec(2, 0, 1, ca)], [other.raw, ca.raw], 'other.test').why, 'the chain does not lead to the DANE-TA certificate');
    assert.equal(daneMatch([rec(2, 0, 1, ca)], [leaf.raw], 'mx.example.test').ok, false, 'the trust anchor must be presented');
    // PKIX-TA(0) and PKIX-EE(1) are not usable for SMTP (3.1.3), nor unknown selectors or matching types.
    assert.deepEqual(usableTlsa([rec(0, 0, 1, ca), rec(1, 1, 1, leaf), { usage: 3, selector: 2, matchingType: 1, data: Buffer.alloc(32) }, { usage: 3, selector: 1, matchingType: 3, data: Buffer.alloc(32) }]), []);
    assert.equal(daneMatch([rec(1, 1, 1, leaf)], chain, 'mx.example.test').ok, false, 'PKIX-EE is ignored');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
