/**
 * IMAP sequence sets (RFC 9051 section 9 `sequence-set`, RFC 5182 `$`).
 *
 * Invariants:
 * - Nothing here ever expands a range into its members unless the caller asks to iterate:
 *   `1:4294967295` costs one pair, membership is a binary search over pairs, and selecting
 *   from a sorted UID array is a pair of binary searches per range.
 * - `NumberRanges` are always sorted, non-overlapping and non-adjacent (merged), so two equal
 *   sets have equal representations.
 * - Pure functions, no I/O, no module state.
 */

/** Largest value of `number` / `nz-number` (RFC 9051 section 9: unsigned 32-bit). */
export const MAX_UINT32 = 4294967295;

/** A `seq-number`: an nz-number or `*` (the largest number in use). */
export type SeqNumber = number | '*';

/** One `seq-number` or `seq-range` as written by the client (`5:2` is kept as written). */
export interface SeqRange {
  start: SeqNumber;
  end: SeqNumber;
}

/**
 * A parsed `sequence-set`. `saved` is true when the client used `$` (RFC 5182 SEARCHRES) in the
 * set; RFC 9051's grammar lets `$` appear as an element of a comma list (`sequence-set` is
 * recursive and `sequence-set =/ seq-last-command`), so it is a flag beside ordinary ranges.
 */
export interface SequenceSet {
  ranges: SeqRange[];
  saved: boolean;
}

/** Sorted, merged, inclusive `[lo, hi]` pairs. */
export type NumberRanges = Array<[number, number]>;

export class SequenceSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SequenceSetError';
  }
}

export interface ParseSequenceSetOptions {
  /** Accept `$` (RFC 5182). Default true. */
  allowSaved?: boolean;
  /** Accept `*`. Default true. */
  allowStar?: boolean;
}

function parseSeqNumber(text: string, allowStar: boolean): SeqNumber {
  if (text === '*') {
    if (!allowStar) throw new SequenceSetError('"*" not allowed here');
    return '*';
  }
  // seq-number = nz-number / "*"; nz-number = digit-nz *DIGIT (RFC 9051 section 9)
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new SequenceSetError(text === '' ? 'Empty sequence number' : `Invalid sequence number "${text}"`);
  }
  if (text.length > 10) throw new SequenceSetError(`Sequence number out of range "${text}"`);
  const n = Number(text);
  if (n > MAX_UINT32) throw new SequenceSetError(`Sequence number out of range "${text}"`);
  return n;
}

/**
 * Parse `1:5,7,9:*`, `*`, `$` (RFC 9051 section 9 `sequence-set`; RFC 5182 section 2.1).
 * Throws SequenceSetError on anything else (empty elements, 0, numbers > 2^32-1, spaces).
 */
export function parseSequenceSet(text: string, options: ParseSequenceSetOptions = {}): SequenceSet {
  const allowSaved = options.allowSaved ?? true;
  const allowStar = options.allowStar ?? true;
  if (text.length === 0) throw new SequenceSetError('Empty sequence set');
  const ranges: SeqRange[] = [];
  let saved = false;
  for (const element of text.split(',')) {
    if (element === '$') {
      if (!allowSaved) throw new SequenceSetError('"$" not allowed here');
      saved = true;
      continue;
    }
    const colon = element.indexOf(':');
    if (colon < 0) {
      const n = parseSeqNumber(element, allowStar);
      ranges.push({ start: n, end: n });
    } else {
      const start = parseSeqNumber(element.slice(0, colon), allowStar);
      const end = parseSeqNumber(element.slice(colon + 1), allowStar);
      ranges.push({ start, end });
    }
  }
  return { ranges, saved };
}

/** Is `text` a syntactically valid sequence set? */
export function isSequenceSet(text: string, options?: ParseSequenceSetOptions): boolean {
  try {
    parseSequenceSet(text, options);
    return true;
  } catch {
    return false;
  }
}

function formatSeqNumber(n: SeqNumber): string {
  return n === '*' ? '*' : String(n);
}

/** Format a parsed set back to wire form (ranges as written, then `$` if used). */
export function formatSequenceSet(set: SequenceSet): string {
  const parts = set.ranges.map((r) =>
    r.start === r.end ? formatSeqNumber(r.start) : `${formatSeqNumber(r.start)}:${formatSeqNumber(r.end)}`,
  );
  if (set.saved) parts.push('$');
  return parts.join(',');
}

/** Sort and merge arbitrary inclusive pairs (lo > hi pairs are swapped). */
export function normalizeRanges(pairs: ReadonlyArray<readonly [number, number]>): NumberRanges {
  const sorted = pairs
    .map(([a, b]): [number, number] => (a <= b ? [a, b] : [b, a]))
    .sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  const out: NumberRanges = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) {
      if (hi > last[1]) last[1] = hi;
    } else {
      out.push([lo, hi]);
    }
  }
  return out;
}

export interface ResolveOptions {
  /**
   * The value `*` stands for: the highest sequence number or UID in use (RFC 9051 section 9,
   * `seq-number`). Pass 0 for an empty mailbox: `*` then resolves to 0, which no message has.
   */
  star: number;
  /** The saved search result (RFC 5182), already as numbers of the same kind; needed if set.saved. */
  saved?: NumberRanges;
}

/**
 * Resolve a parsed set into sorted merged ranges. `n:m` and `m:n` are the same set
 * (RFC 9051 section 9: "the range 2:4 and 4:2 are equivalent"). Numbers above `star` are kept
 * (UID sets legitimately name absent UIDs); use clampRanges for sequence-number semantics.
 * Throws SequenceSetError when `$` is used and no saved result was given.
 */
export function resolveSequenceSet(set: SequenceSet, options: ResolveOptions): NumberRanges {
  const star = options.star;
  const pairs: Array<[number, number]> = set.ranges.map((r) => [
    r.start === '*' ? star : r.start,
    r.end === '*' ? star : r.end,
  ]);
  if (set.saved) {
    if (!options.saved) throw new SequenceSetError('No saved search result for "$"');
    for (const [lo, hi] of options.saved) pairs.push([lo, hi]);
  }
  return normalizeRanges(pairs);
}

/** Keep only the members of `ranges` within 1..max. */
export function clampRanges(ranges: NumberRanges, max: number): NumberRanges {
  const out: NumberRanges = [];
  for (const [lo, hi] of ranges) {
    if (lo > max) break;
    const a = Math.max(lo, 1);
    const b = Math.min(hi, max);
    if (a <= b) out.push([a, b]);
  }
  return out;
}

/** Number of members (a count, not an expansion). */
export function rangesCount(ranges: NumberRanges): number {
  let n = 0;
  for (const [lo, hi] of ranges) n += hi - lo + 1;
  return n;
}

/** Smallest member or undefined. */
export function rangesMin(ranges: NumberRanges): number | undefined {
  return ranges.length ? ranges[0]![0] : undefined;
}

/** Largest member or undefined. */
export function rangesMax(ranges: NumberRanges): number | undefined {
  return ranges.length ? ranges[ranges.length - 1]![1] : undefined;
}

/** Membership by binary search over the pairs: O(log ranges). */
export function rangesHas(ranges: NumberRanges, n: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid]!;
    if (n < r[0]) hi = mid - 1;
    else if (n > r[1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/** Iterate members in ascending order, lazily. Only as costly as the members consumed. */
export function* iterateRanges(ranges: NumberRanges): Generator<number> {
  for (const [lo, hi] of ranges) for (let n = lo; n <= hi; n++) yield n;
}

/** First index i with sorted[i] >= value. */
function lowerBound(sorted: ArrayLike<number>, value: number, from = 0): number {
  let lo = from;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Index spans `[from, to)` of an ascending array (e.g. the UIDs of a mailbox, where index+1 is
 * the sequence number) whose values fall in `ranges`: O(ranges * log n), no expansion.
 * Spans are ascending and merged when adjacent.
 */
export function sortedIndexSpans(sorted: ArrayLike<number>, ranges: NumberRanges): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  let start = 0;
  for (const [lo, hi] of ranges) {
    const from = lowerBound(sorted, lo, start);
    if (from >= sorted.length) break;
    const to = lowerBound(sorted, hi + 1, from);
    if (to > from) {
      const last = spans[spans.length - 1];
      if (last && last[1] === from) last[1] = to; // adjacent in the array: one span
      else spans.push([from, to]);
    }
    start = to;
  }
  return spans;
}

/** The values of an ascending array that are members of `ranges`, ascending. */
export function selectSorted(sorted: ArrayLike<number>, ranges: NumberRanges): number[] {
  const out: number[] = [];
  for (const [from, to] of sortedIndexSpans(sorted, ranges)) {
    for (let i = from; i < to; i++) out.push(sorted[i]!);
  }
  return out;
}

/** Ranges from a list of numbers in any order (duplicates allowed). */
export function rangesFromNumbers(numbers: Iterable<number>): NumberRanges {
  const sorted = Array.from(numbers).sort((a, b) => a - b);
  const out: NumberRanges = [];
  for (const n of sorted) {
    const last = out[out.length - 1];
    if (last && n <= last[1] + 1) {
      if (n > last[1]) last[1] = n;
    } else {
      out.push([n, n]);
    }
  }
  return out;
}

/** Union of two normalised range lists. */
export function rangesUnion(a: NumberRanges, b: NumberRanges): NumberRanges {
  return normalizeRanges([...a, ...b]);
}

/** Intersection of two normalised range lists, linear merge. */
export function rangesIntersect(a: NumberRanges, b: NumberRanges): NumberRanges {
  const out: NumberRanges = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const [alo, ahi] = a[i]!;
    const [blo, bhi] = b[j]!;
    const lo = Math.max(alo, blo);
    const hi = Math.min(ahi, bhi);
    if (lo <= hi) out.push([lo, hi]);
    if (ahi < bhi) i++;
    else j++;
  }
  return out;
}

/** Members of `a` not in `b` (e.g. known UIDs minus existing ones for VANISHED), linear merge. */
export function rangesSubtract(a: NumberRanges, b: NumberRanges): NumberRanges {
  const out: NumberRanges = [];
  let j = 0;
  for (const [alo, ahi] of a) {
    let lo = alo;
    while (j < b.length && b[j]![1] < lo) j++;
    let k = j;
    while (lo <= ahi && k < b.length && b[k]![0] <= ahi) {
      const [blo, bhi] = b[k]!;
      if (blo > lo) out.push([lo, blo - 1]);
      lo = Math.max(lo, bhi + 1);
      k++;
    }
    if (lo <= ahi) out.push([lo, ahi]);
  }
  return out;
}

/**
 * Compressed wire form of normalised ranges: `1:5,7,9:12` (ESEARCH ALL, VANISHED,
 * RFC 4731 section 3.1, RFC 7162 section 3.2.10). Empty ranges give ''.
 */
export function formatRanges(ranges: NumberRanges): string {
  return ranges.map(([lo, hi]) => (lo === hi ? String(lo) : `${lo}:${hi}`)).join(',');
}

/**
 * Compress a list of numbers while keeping its order: runs of consecutive ascending numbers
 * become `a:b`. For COPYUID / MOVE (RFC 4315 section 3, RFC 6851 section 4.3) the source and
 * destination sets must list UIDs in corresponding order, so nothing is sorted here.
 */
export function compressNumbers(numbers: ReadonlyArray<number>): string {
  const parts: string[] = [];
  let i = 0;
  while (i < numbers.length) {
    const start = numbers[i]!;
    let end = start;
    while (i + 1 < numbers.length && numbers[i + 1] === end + 1) {
      end++;
      i++;
    }
    parts.push(start === end ? String(start) : `${start}:${end}`);
    i++;
  }
  return parts.join(',');
}

/**
 * Parse a set that contains only numbers (no `*`, no `$`) straight into normalised ranges, as
 * found in QRESYNC known-uids or a client's own echo. Throws SequenceSetError.
 */
export function parseNumberRanges(text: string): NumberRanges {
  const set = parseSequenceSet(text, { allowSaved: false, allowStar: false });
  return resolveSequenceSet(set, { star: 0 });
}
