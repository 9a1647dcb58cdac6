import { it } from 'node:test';
import assert from 'node:assert/strict';
import { parseAddress, parseCatchAll, stripSubaddress } from '../../src/lib/address.js';
import { parseSize, parseDuration, formatSize } from '../../src/lib/size.js';

it('parses and canonicalises addresses', () => {
  assert.deepEqual(parseAddress('Alice@Example.ORG'), { local: 'alice', domain: 'example.org', address: 'alice@example.org' });
  assert.equal(parseAddress('"bob"@example.org')?.address, 'bob@example.org');
  assert.equal(parseAddress('jörg@bücher.example')?.address, 'jörg@bücher.example');
  for (const bad of ['', 'alice', '@example.org', 'alice@', 'a b@example.org', 'alice@localhost', 'a..b@example.org', '.a@example.org', 'a@-x.org', 'a@x..org', `${'a'.repeat(65)}@example.org`, 'a@b@example.org']) {
    assert.equal(parseAddress(bad), null, bad);
  }
});

it('parses catch-alls and subaddresses', () => {
  assert.equal(parseCatchAll('@Example.org'), 'example.org');
  assert.equal(parseCatchAll('example.org'), null);
  assert.equal(stripSubaddress('alice+tag', '+'), 'alice');
  assert.equal(stripSubaddress('alice-tag+x', '+-'), 'alice');
  assert.equal(stripSubaddress('+alice', '+'), null);
  assert.equal(stripSubaddress('alice', '+'), null);
  assert.equal(stripSubaddress('alice+tag', ''), null);
});

it('parses sizes and durations as operators write them', () => {
  assert.equal(parseSize('25M'), 26214400);
  assert.equal(parseSize('500K'), 512000);
  assert.equal(parseSize('1.5G'), 1610612736);
  assert.equal(parseSize(1234), 1234);
  assert.throws(() => parseSize('lots'), /invalid size "lots"/);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('5m'), 300000);
  assert.equal(parseDuration('4h'), 14400000);
  assert.throws(() => parseDuration('5 minutes'), /invalid duration/);
  assert.equal(formatSize(1536), '1.5K');
  assert.equal(formatSize(500 * 1024 * 1024), '500M');
});
