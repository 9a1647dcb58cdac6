/**
 * Postern's ENVELOPE, BODY, BODYSTRUCTURE and BODY[section] against what Dovecot 2.3.19 answered
 * for the same fixture messages (recorded by test/fixtures/mime/dovecot-expect.ts). Messages are
 * stored with CRLF line ends, as ingest does (normalizeLineEndings).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { formatBodystructure, formatEnvelope } from '../../src/lib/imap/format.js';
import { buildEnvelope, normalizeLineEndings, parseMessage, sectionBytes } from '../../src/lib/mime/parse.js';

const dir = join(dirname(fileURLToPath(import.meta.url)), '../fixtures/mime');

/** Items where we differ on purpose (see the header comments of parse.ts and format.ts). */
const KNOWN: Record<string, { items: RegExp; why: string }> = {
  'deep-nesting': {
    // the part at depth 50 is served as a leaf: structure and sections from there on differ
    items: /^(BODY|BODYSTRUCTURE|BODY\[(\d+\.){49,}\d+\])$/,
    why: 'descent stops at depth 50; Dovecot stops at 100',
  },
};

const files = readdirSync(dir).filter((f) => f.endsWith('.dovecot.json'));

test('there are recorded Dovecot answers', () => {
  assert.ok(files.length >= 25);
});

for (const f of files) {
  const name = f.replace(/\.dovecot\.json$/, '');
  test(`same as Dovecot: ${name}`, () => {
    const raw = normalizeLineEndings(readFileSync(join(dir, `${name}.eml`)));
    const expected = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, string>;
    const root = parseMessage(raw);
    const known = KNOWN[name];
    for (const [item, want] of Object.entries(expected)) {
      if (known?.items.test(item)) continue;
      let got: Buffer;
      if (item === 'ENVELOPE') got = Buffer.from(formatEnvelope(buildEnvelope(raw, root)), 'utf8');
      else if (item === 'BODY') got = Buffer.from(formatBodystructure(root, false), 'utf8');
      else if (item === 'BODYSTRUCTURE') got = Buffer.from(formatBodystructure(root, true), 'utf8');
      else {
        const m = /^BODY\[([\d.]*?)\.?(MIME|HEADER|TEXT)?\]$/.exec(item);
        assert.ok(m, item);
        const path = m[1] === '' ? [] : m[1].split('.').map(Number);
        got = sectionBytes(raw, root, path, (m[2] ?? '') as '' | 'MIME' | 'HEADER' | 'TEXT') ?? Buffer.alloc(0);
        // NUL cannot go in an IMAP literal: Dovecot sends 0x80 instead in BODY[] (not BINARY[]), a job
        // for the FETCH code, not the parser
        if (got.includes(0)) got = Buffer.from(got.toString('latin1').replace(/\0/g, '\x80'), 'latin1');
      }
      // recorded as Latin-1 (one char per byte); 8-bit header bytes that are not UTF-8 differ by design
      assert.equal(got.toString('latin1'), want, `${name} ${item}`);
    }
  });
}
