/**
 * Incremental UTF-8 → string: emits only complete characters, holding back the bytes of a
 * character split across tokens. Invalid sequences become U+FFFD, as TextDecoder does.
 */
export class Utf8Stream {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });

  push(bytes: Uint8Array): string {
    return this.decoder.decode(bytes, { stream: true });
  }

  flush(): string {
    return this.decoder.decode();
  }
}
