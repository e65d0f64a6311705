// Coalesced reloads: the run view reloads its details on each event of its
// run, and a burst of events (a step finishing, the next starting) must not
// become a burst of requests. At most one load runs at a time; events during
// it ask for exactly one more load after it.

export interface Reloader {
  /** Asks for a load; returns when the state asked for has been loaded (or failed). */
  request(): Promise<void>;
  /** Stops: no load starts after this. */
  stop(): void;
}

export function coalesce(load: () => Promise<void>): Reloader {
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const run = async (): Promise<void> => {
    do {
      again = false;
      if (stopped) return;
      try {
        await load();
      } catch {
        // the load reports its own error to the view; a later event tries again
      }
    } while (again);
  };

  return {
    request() {
      if (stopped) return Promise.resolve();
      if (running) {
        again = true;
        return running;
      }
      running = run().finally(() => {
        running = undefined;
      });
      return running;
    },
    stop() {
      stopped = true;
    },
  };
}
