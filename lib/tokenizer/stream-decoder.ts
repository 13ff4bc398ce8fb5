/**
 * Incremental detokenization: each pushed token's bytes go through a streaming UTF-8 decoder,
 * so a character split across tokens (byte-fallback tokens, byte-level BPE pieces) comes out
 * whole, once its last byte arrives. The text of all pushes plus flush() equals decode() of
 * the same tokens.
 */
import type { DecodeState, TokenizerCore } from "./tokenizer.js";
import type { StreamDecoder, StreamDecoderOptions } from "./types.js";

export class TokenStreamDecoder implements StreamDecoder {
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  private readonly state: DecodeState = { atStart: true };
  private readonly skipSpecial: boolean;

  constructor(
    private readonly core: TokenizerCore,
    options: StreamDecoderOptions | undefined,
  ) {
    this.skipSpecial = options?.skipSpecial ?? true;
    const prefix = options?.prefix;
    if (prefix) {
      // The prefix's text is already out; run it through only to carry its state (a pending
      // partial character, whether the text has started).
      for (let i = 0; i < prefix.length; i++) this.utf8.decode(core.piece(core.checkId(prefix[i]), this.skipSpecial, this.state), { stream: true });
    }
  }

  push(id: number): string {
    return this.utf8.decode(this.core.piece(this.core.checkId(id), this.skipSpecial, this.state), { stream: true });
  }

  flush(): string {
    return this.utf8.decode();
  }
}
