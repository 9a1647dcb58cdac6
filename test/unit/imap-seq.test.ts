import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clampRanges,
  compressNumbers,
  formatRanges,
  formatSequenceSet,
  isSequenceSet,
  iterateRanges,
  MAX_UINT32,
  normalizeRanges,
  parseNumberRanges,
  parseSequenceSet,
  rangesCount,
  rangesFromNumbers,
  rangesHas,
  rangesIntersect,
  rangesMax,
  rangesMin,
  rangesSubtract,
  rangesUnion,
  resolveSequenceSet,
  selectSorted,
  SequenceSetError,
  sortedIndexSpans,
  type NumberRanges,
} from '../../src/lib/imap/sequence-set.js';

test('parseSequenceSet: valid sets (RFC 9051 section 9, RFC 5182)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['1', '1', false],
    ['*', '*', false],
    ['$', '', true],
    ['1:5', '1:5', false],
    ['5:1', '5:1', false],
    ['1:5,7,9:*', '1:5,7,9:*', false],
    ['*:4', '*:4', false],
    ['4294967295', '4294967295', false],
    ['1:4294967295', '1:4294967295', false],
    ['1,$', '1', true],
    ['$,2:3', '2:3', true],
    ['2,2,2', '2,2,2', false],
  ];
  for (const [input, ranges, saved] of cases) {
    const set = parseSequenceSet(input);
    assert.equal(set.saved, saved, input);
    assert.equal(formatSequenceSet({ ranges: set.ranges, saved: false }), ranges, input);
    assert.ok(isSequenceSet(input), input);
  }
  assert.deepEqual(parseSequenceSet('3:*').ranges, [{ start: 3, end: '*' }]);
  assert.equal(formatSequenceSet(parseSequenceSet('1:2,$')), '1:2,$');
});

test('parseSequenceSet: invalid sets', () => {
  const bad = [
    '',
    '0',
    '0:5',
    '1:0',
    '01',
    '1,',
    ',1',
    '1,,2',
    '1:',
    ':1',
    '1::2',
    '1:2:3',
    '4294967296',
    '1:4294967296',
    '99999999999999999999',
    '-1',
    '1 ',
    ' 1',
    'a',
    '1:a',
    '$:5',
    '**',
    '1.5',
  ];
  for (const input of bad) {
    assert.throws(() => parseSequenceSet(input), SequenceSetError, JSON.stringify(input));
    assert.equal(isSequenceSet(input), false, input);
  }
  assert.throws(() => parseSequenceSet('$', { allowSaved: false }), SequenceSetError);
  assert.throws(() => parseSequenceSet('1:*', { allowStar: false }), SequenceSetError);
});

test('resolveSequenceSet: star, reversed ranges, merging, saved result', () => {
  const cases: Array<[string, number, NumberRanges]> = [
    ['1:5,7,9:*', 12, [[1, 5], [7, 7], [9, 12]]],
    ['5:1', 10, [[1, 5]]],
    ['*', 10, [[10, 10]]],
    ['*:8', 10, [[8, 10]]],
    ['1:3,2:6,8,7', 10, [[1, 8]]],
    ['9:*', 5, [[5, 9]]], // RFC 9051: 9:* with max 5 is 5:9
    ['1:4294967295', 3, [[1, 4294967295]]],
    ['*', 0, [[0, 0]]],
  ];
  for (const [input, star, expected] of cases) {
    assert.deepEqual(resolveSequenceSet(parseSequenceSet(input), { star }), expected, input);
  }
  assert.deepEqual(resolveSequenceSet(parseSequenceSet('1,$'), { star: 9, saved: [[4, 6]] }), [
    [1, 1],
    [4, 6],
  ]);
  assert.throws(() => resolveSequenceSet(parseSequenceSet('$'), { star: 9 }), SequenceSetError);
});

test('huge ranges stay compact: membership, count, clamp, spans', () => {
  const all = resolveSequenceSet(parseSequenceSet('1:4294967295'), { star: 7 });
  assert.equal(all.length, 1);
  assert.equal(rangesCount(all), MAX_UINT32);
  assert.equal(rangesHas(all, 1), true);
  assert.equal(rangesHas(all, MAX_UINT32), true);
  assert.equal(rangesHas(all, 0), false);
  assert.deepEqual(clampRanges(all, 7), [[1, 7]]);
  const uids = new Uint32Array([3, 10, 11, 500, 4294967290]);
  assert.deepEqual(sortedIndexSpans(uids, all), [[0, 5]]);
  assert.deepEqual(selectSorted(uids, resolveSequenceSet(parseSequenceSet('11:600,4294967000:*'), { star: 4294967295 })), [
    11, 500, 4294967290,
  ]);
});

test('rangesHas: binary search over many ranges', () => {
  const ranges = rangesFromNumbers(Array.from({ length: 1000 }, (_, i) => i * 3));
  assert.equal(ranges.length, 1000);
  for (let n = 0; n < 3000; n++) assert.equal(rangesHas(ranges, n), n % 3 === 0, String(n));
});

test('sortedIndexSpans / selectSorted table', () => {
  const uids = [1, 2, 4, 7, 8, 9, 15, 100];
  const cases: Array<[string, number, number[], Array<[number, number]>]> = [
    ['1:*', 100, uids, [[0, 8]]],
    ['3', 100, [], []],
    ['2:8', 100, [2, 4, 7, 8], [[1, 5]]],
    ['9,15,101:200', 100, [9, 15], [[5, 7]]],
    ['200:*', 100, [100], [[7, 8]]], // RFC 9051 6.4.8: n:* includes the last UID
    ['1,4,100', 100, [1, 4, 100], [[0, 1], [2, 3], [7, 8]]],
  ];
  for (const [input, star, values, spans] of cases) {
    const r = resolveSequenceSet(parseSequenceSet(input), { star });
    assert.deepEqual(selectSorted(uids, r), values, input);
    assert.deepEqual(sortedIndexSpans(uids, r), spans, input);
  }
  assert.deepEqual(selectSorted([], [[1, 10]]), []);
});

test('set algebra', () => {
  const a: NumberRanges = [
    [1, 10],
    [20, 30],
  ];
  const b: NumberRanges = [
    [5, 22],
    [29, 40],
  ];
  assert.deepEqual(rangesUnion(a, b), [[1, 40]]);
  assert.deepEqual(rangesIntersect(a, b), [
    [5, 10],
    [20, 22],
    [29, 30],
  ]);
  assert.deepEqual(rangesSubtract(a, b), [
    [1, 4],
    [23, 28],
  ]);
  assert.deepEqual(rangesSubtract(b, a), [
    [11, 19],
    [31, 40],
  ]);
  assert.deepEqual(rangesSubtract(a, []), a);
  assert.deepEqual(rangesSubtract([[1, 4294967295]], [[2, 4294967294]]), [
    [1, 1],
    [4294967295, 4294967295],
  ]);
  assert.deepEqual(rangesIntersect([], a), []);
  assert.deepEqual(normalizeRanges([[5, 3], [1, 1], [2, 2], [10, 12], [11, 11]]), [
    [1, 5],
    [10, 12],
  ]);
  assert.equal(rangesMin(a), 1);
  assert.equal(rangesMax(a), 30);
  assert.equal(rangesMin([]), undefined);
});

test('formatting: ranges and order-preserving compression (COPYUID, ESEARCH ALL, VANISHED)', () => {
  const cases: Array<[number[], string, string]> = [
    [[], '', ''],
    [[1], '1', '1'],
    [[1, 2, 3, 5, 7, 8], '1:3,5,7:8', '1:3,5,7:8'],
    [[8, 7, 1, 2, 3], '1:3,7:8', '8,7,1:3'],
    [[304, 319, 320], '304,319:320', '304,319:320'],
    [[5, 5, 6], '5:6', '5,5:6'],
  ];
  for (const [nums, ranges, compressed] of cases) {
    assert.equal(formatRanges(rangesFromNumbers(nums)), ranges, nums.join());
    assert.equal(compressNumbers(nums), compressed, nums.join());
  }
  assert.deepEqual([...iterateRanges([[1, 3], [7, 8]])], [1, 2, 3, 7, 8]);
  // Lazily iterating the start of a huge range costs only what is consumed.
  const it = iterateRanges([[1, MAX_UINT32]]);
  assert.equal(it.next().value, 1);
  assert.equal(it.next().value, 2);
});

test('parseNumberRanges refuses * and $', () => {
  assert.deepEqual(parseNumberRanges('41,43:211,214:541'), [
    [41, 41],
    [43, 211],
    [214, 541],
  ]);
  assert.throws(() => parseNumberRanges('1:*'), SequenceSetError);
  assert.throws(() => parseNumberRanges('$'), SequenceSetError);
});
