// Progress on stderr with cli-progress: drawn only when stderr is a terminal,
// and only once the work has taken a moment, so quick runs and pipes see none.

import cliProgress from 'cli-progress';

/** Work shorter than this shows no progress at all. */
const SHOW_AFTER_MS = 300;

export interface Progress {
  /** `done` of the total so far, and what was just finished. */
  update(done: number, detail?: string): void;
  stop(): void;
}

function bar(format: string, total: number): { start(): cliProgress.SingleBar; running: () => cliProgress.SingleBar | null } {
  let instance: cliProgress.SingleBar | null = null;
  return {
    start() {
      instance = new cliProgress.SingleBar(
        { format, stream: process.stderr, clearOnComplete: true, hideCursor: true, linewrap: true, barsize: 30, emptyOnZero: true },
        cliProgress.Presets.shades_classic,
      );
      instance.start(total, 0, { detail: '' });
      return instance;
    },
    running: () => instance,
  };
}

/** A bar over `total` items. */
export function startProgress(label: string, total: number): Progress {
  if (process.stderr.isTTY !== true || total === 0) return { update() {}, stop() {} };
  const started = Date.now();
  const b = bar(`${label} {bar} {value}/{total} {detail}`, total);
  let last = { done: 0, detail: '' };
  return {
    update(done, detail = '') {
      last = { done, detail };
      const running = b.running() ?? (Date.now() - started >= SHOW_AFTER_MS ? b.start() : null);
      running?.update(done, { detail });
    },
    stop() {
      const running = b.running();
      if (running !== null) {
        running.update(last.done, { detail: last.detail });
        running.stop();
      }
    },
  };
}

/** An indicator with elapsed time, for work whose length is not known in advance. */
export function startActivity(label: string): Progress {
  if (process.stderr.isTTY !== true) return { update() {}, stop() {} };
  const b = bar(`${label}… {duration_formatted}`, 1);
  const timer = setTimeout(() => b.start(), SHOW_AFTER_MS);
  return {
    update() {},
    stop() {
      clearTimeout(timer);
      b.running()?.stop();
    },
  };
}
