/**
 * Long compile work is written as generators that `yield` at safe points (between files,
 * documents and types). The same code then runs straight through (CLI, tests, a first load) or in
 * slices that give the event loop back every few milliseconds, so a reload never stalls the checks
 * a server is answering meanwhile.
 */
export type Work<T> = Generator<void, T, void>;

/** Runs `work` to completion without pausing. */
export function runToEnd<T>(work: Work<T>): T {
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
  }
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Runs `work`, yielding to the event loop whenever a slice has run for `sliceMs`. */
export async function runInSlices<T>(work: Work<T>, sliceMs: number): Promise<T> {
  let start = performance.now();
  for (;;) {
    const step = work.next();
    if (step.done) return step.value;
    if (performance.now() - start >= sliceMs) {
      await nextTurn();
      start = performance.now();
    }
  }
}
