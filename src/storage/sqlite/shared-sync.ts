/**
 * Group commit's WAL sync, shared: a caller arriving while a sync runs gets the next one, which starts after the
 * running one and so after the caller's commit, and covers it; every caller arriving meanwhile shares that next
 * sync. Syncs complete in the order they were asked for. Used by the event loop's group commit (SqliteStore; the
 * writer thread syncs after each durable batch instead, sqlite-writer-thread.ts).
 */
export function sharedSync(datasync: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null;
  let next: Promise<void> | null = null;
  const sync = (): Promise<void> => {
    if (!running) {
      running = datasync().finally(() => (running = null));
      return running;
    }
    next ??= running.then(
      () => ((next = null), sync()),
      () => ((next = null), sync()),
    );
    return next;
  };
  return sync;
}
