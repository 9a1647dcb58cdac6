/** Sizes and durations as operators write them: "25M", "500K", "1G", "10m", "4h". Pure. */

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, KB: 1024, KIB: 1024, M: 1024 ** 2, MB: 1024 ** 2, MIB: 1024 ** 2, G: 1024 ** 3, GB: 1024 ** 3, GIB: 1024 ** 3, T: 1024 ** 4, TB: 1024 ** 4 };

/** Parses "25M" / "500 KB" / "1048576" into bytes; throws a readable error otherwise. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new Error(`invalid size ${input}`);
    return Math.floor(input);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = m ? SIZE_UNITS[m[2]!.toUpperCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`invalid size "${input}" (expected e.g. 500K, 25M, 2G)`);
  return Math.floor(Number(m[1]) * unit);
}

/** Bytes as a short human string: 1536 -> "1.5K". */
export function formatSize(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return (i === 0 ? String(v) : v >= 10 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, '')) + units[i];
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** Parses "500ms", "10s", "5m", "4h", "5d" (or a number of milliseconds) into milliseconds. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') return input;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/.exec(input);
  if (!m) throw new Error(`invalid duration "${input}" (expected e.g. 500ms, 30s, 5m, 4h, 5d)`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2]!]!);
}
