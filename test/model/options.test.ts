/**
 * Option objects: a key loadModel or createSession does not define is ERR_INVALID_ARGUMENT
 * naming it (a misspelling would otherwise run silently with the default).
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_MODEL, isTesseraError, loadModel } from "../../lib/index.js";

async function code(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    return isTesseraError(e) ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
}

describe("options", () => {
  it("loadModel refuses an option it does not know, naming it", async () => {
    expect(await code(loadModel({ contextsize: 64 } as never))).toMatch(/^ERR_INVALID_ARGUMENT: loadModel: unknown option "contextsize"/);
    expect(await code(loadModel(DEFAULT_MODEL, { threads: 1, gpuLayers: 0 } as never))).toMatch(/unknown option "gpuLayers"/);
    expect(await code(loadModel(DEFAULT_MODEL, null as never))).toMatch(/^ERR_INVALID_ARGUMENT: loadModel options must be an object/);
  });

  it("createSession refuses an option it does not know", async () => {
    const model = await loadModel({ backend: "cpu", threads: 1 });
    try {
      expect(await code(() => model.createSession({ context: 16 } as never))).toMatch(/^ERR_INVALID_ARGUMENT: createSession: unknown option "context"/);
      model.createSession({ contextSize: 16, batchSize: 4 }).dispose();
    } finally {
      model.dispose();
    }
  });
});
