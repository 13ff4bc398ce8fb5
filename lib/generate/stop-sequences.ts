/**
 * Finds stop sequences in streamed text. Text that might be the start of a stop sequence is
 * held back until it is known not to be one, so a stop string never leaks into the output,
 * even when it arrives split across tokens.
 */
export class StopSequenceMatcher {
  private held = "";

  constructor(private readonly sequences: readonly string[]) {}

  /** Adds text; returns what can be emitted now and whether a stop sequence was reached. */
  push(text: string): { emit: string; stopped: boolean } {
    this.held += text;
    if (this.sequences.length === 0) {
      const emit = this.held;
      this.held = "";
      return { emit, stopped: false };
    }
    let first = -1;
    for (const s of this.sequences) {
      const at = this.held.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const emit = this.held.slice(0, first);
      this.held = "";
      return { emit, stopped: true };
    }
    const keep = this.longestPendingPrefix();
    const emit = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { emit, stopped: false };
  }

  /** Releases held-back text once generation ends without a stop. */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }

  /** Length of the longest suffix of the held text that is a proper prefix of a stop sequence. */
  private longestPendingPrefix(): number {
    let best = 0;
    for (const s of this.sequences) {
      for (let len = Math.min(s.length - 1, this.held.length); len > best; len--) {
        if (this.held.endsWith(s.slice(0, len))) {
          best = len;
          break;
        }
      }
    }
    return best;
  }
}
