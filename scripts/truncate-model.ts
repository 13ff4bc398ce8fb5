/** A copy of a GGUF model keeping only its first `blocks` blocks (a draft of the same family). */
import fs from "node:fs";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGUFValueType } from "../../lib/gguf/types.js";
import { writeGGUF } from "../../lib/gguf/writer.js";

export function writeTruncatedModel(src: string, dst: string, blocks: number): void {
  const file = readGGUF(src);
  const arch = String(file.metadata.get("general.architecture")!.value);
  const bytes = fs.readFileSync(src);
  const metadata = [...file.metadata].map(([k, v]): [string, typeof v] =>
    k === `${arch}.block_count` ? [k, { type: GGUFValueType.UINT32, value: blocks }] : [k, v],
  );
  const tensors = file.tensors
    .filter((t) => {
      const m = /^blk\.(\d+)\./.exec(t.name);
      return !m || Number(m[1]) < blocks;
    })
    .map((t) => ({ name: t.name, type: t.type, dims: t.dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + t.offset, t.byteLength) }));
  writeGGUF(dst, { metadata, tensors, alignment: file.alignment });
}
