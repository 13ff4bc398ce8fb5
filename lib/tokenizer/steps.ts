/**
 * Encoding in steps: the encoders can hand back control every so often (a generator that
 * yields), so a large text can be tokenized between other work on the event loop. A step is
 * about STEP_UNITS code units of input, or merges of one long word; the synchronous encode
 * runs the same steps back to back.
 *
 * Whatever a step leaves for the next one (symbol buffers, a merge queue, a regex position)
 * belongs to that encoding alone: between two steps other encodes may run on the same
 * tokenizer and use its shared buffers. Tokens a step has appended to the output array are
 * final: between steps the caller may move them out of it (no step looks back at them).
 */
export const STEP_UNITS = 1 << 14;

export type Steps = Generator<void, void, undefined>;

/** Runs all the steps at once. */
export function drain(steps: Steps): void {
  while (!steps.next().done);
}
