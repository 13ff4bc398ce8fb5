/** `tessera info`: the CPU features in use and whether CUDA can run here, and if not, why. */
import { parseArgs } from "node:util";
import { native } from "../native.js";

export const INFO_USAGE = `usage: tessera info
      prints, as JSON, the CPU features the kernels use (AVX2 or the scalar fallback) and
      whether the CUDA backend can run on this machine, with the reason when it cannot`;

export function info(args: string[]): number {
  const { values } = parseArgs({ args, allowPositionals: false, strict: true, options: { help: { type: "boolean", short: "h" } } });
  if (values.help) {
    process.stdout.write(INFO_USAGE + "\n");
    return 0;
  }
  process.stdout.write(JSON.stringify(native().systemInfo(), null, 2) + "\n");
  return 0;
}
