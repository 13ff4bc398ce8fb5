/**
 * What the sampler and the generation loop know of constrained decoding: a constraint says
 * which tokens may come next (a mask over the vocabulary) and is advanced with each sampled
 * token. Grammars and JSON schemas (lib/grammar) implement it; anything else that can say
 * which tokens are allowed can too.
 */

/** A set of allowed token ids. */
export interface TokenMask {
  /** Bit (id & 31) of word (id >> 5) is set when token `id` may be sampled; ids past the words are not allowed. */
  readonly bits: Uint32Array;
  /** How many bits are set. */
  readonly count: number;
  /** The allowed ids in ascending order, when the mask carries them (small sets). */
  readonly ids?: Int32Array;
}

export interface TokenConstraint {
  /**
   * The tokens allowed next, or undefined for any token (an unconstrained stretch: the
   * sampler then pays nothing). `remaining` is how many more tokens the generation may
   * produce (this one included): a constraint uses it to close its output in time.
   * End-of-generation tokens are in the mask exactly when the output may end here.
   */
  allowed(remaining?: number): TokenMask | undefined;
  /** Advances past a sampled token (not an end-of-generation one). Throws if it was not allowed. */
  accept(token: number): void;
  /** The output so far is complete: it may end here. */
  readonly isComplete: boolean;
  /** The output is complete and nothing may follow it. */
  readonly isFinished: boolean;
}
