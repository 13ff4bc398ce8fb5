/** Human-readable dump of a GGUF header: metadata and the tensor table. */
import { parseArgs } from "node:util";
import { DEFAULT_MODEL } from "../default-model.js";
import { TesseraError } from "../errors.js";
import { readGGUF } from "../gguf/reader.js";
import { GGUFValueType, ggmlTypeName, type GGUFArray, type GGUFFile, type GGUFKV } from "../gguf/types.js";

const ARRAY_PREVIEW = 8;
const STRING_PREVIEW = 120;

function clip(s: string): string {
  const oneLine = JSON.stringify(s);
  return oneLine.length > STRING_PREVIEW ? oneLine.slice(0, STRING_PREVIEW) + "…\"" : oneLine;
}

function formatArray(a: GGUFArray): string {
  const items = Array.from(a.items as ArrayLike<unknown>).slice(0, ARRAY_PREVIEW);
  const shown = items.map((x) => (typeof x === "string" ? clip(x) : typeof x === "object" ? formatArray(x as GGUFArray) : String(x)));
  const more = a.items.length > ARRAY_PREVIEW ? `, … (${a.items.length} items)` : "";
  return `${GGUFValueType[a.itemType].toLowerCase()}[${a.items.length}] [${shown.join(", ")}${more}]`;
}

function formatValue(v: GGUFKV): string {
  if (v.type === GGUFValueType.ARRAY) return formatArray(v.value as GGUFArray);
  if (typeof v.value === "string") return clip(v.value);
  return String(v.value);
}

function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

export function inspectGGUF(file: GGUFFile): string {
  const lines: string[] = [];
  lines.push(`GGUF v${file.version}, ${formatBytes(file.fileSize)}, alignment ${file.alignment}, data at byte ${file.dataOffset}`);
  lines.push(`\nmetadata (${file.metadata.size} keys):`);
  const keyWidth = Math.max(0, ...[...file.metadata.keys()].map((k) => k.length));
  for (const [key, value] of file.metadata) lines.push(`  ${key.padEnd(keyWidth)}  ${formatValue(value)}`);

  lines.push(`\ntensors (${file.tensors.length}):`);
  const nameWidth = Math.max(0, ...file.tensors.map((t) => t.name.length));
  let total = 0;
  let params = 0;
  for (const t of file.tensors) {
    total += t.byteLength;
    params += t.elementCount;
    const dims = `[${t.dims.join(", ")}]`;
    lines.push(`  ${t.name.padEnd(nameWidth)}  ${ggmlTypeName(t.type).padEnd(6)} ${dims.padEnd(22)} ${formatBytes(t.byteLength).padStart(10)}  @${t.offset}`);
  }
  lines.push(`\n${(params / 1e6).toFixed(2)}M parameters, ${formatBytes(total)} of tensor data`);
  return lines.join("\n");
}

export const INSPECT_USAGE = `usage: tessera inspect [model.gguf]
      prints a GGUF file's metadata and tensor table (without a path: the model the package
      ships); reads the header only, so it works on files of any size and architecture`;

/** `tessera inspect [model.gguf]`. */
export function inspectCommand(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, strict: true, options: { help: { type: "boolean", short: "h" } } });
  if (values.help) {
    process.stdout.write(INSPECT_USAGE + "\n");
    return 0;
  }
  if (positionals.length > 1) throw new TesseraError("ERR_INVALID_ARGUMENT", "inspect takes one model path");
  process.stdout.write(inspectGGUF(readGGUF(positionals[0] ?? DEFAULT_MODEL)) + "\n");
  return 0;
}
