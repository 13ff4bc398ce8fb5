import { isTesseraError } from "../../lib/index.js";

/** The code of the TesseraError `f` throws or rejects with; "no error", or "untyped ..." for another throw. */
export async function code(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    return isTesseraError(e) ? e.code : `untyped ${String(e)}`;
  }
  return "no error";
}
