/**
 * The addon loads on any machine; without a usable GPU the CUDA backend is reported
 * unavailable with a reason, "auto" falls back to the CPU and says why, and "cuda" is a
 * coded error rather than a crash.
 */
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../lib/errors.js";
import { loadModel } from "../lib/index.js";
import { native } from "../lib/native.js";
import { hasShared, stories260K } from "./helpers/paths.js";

describe("system information and backend choice", () => {
  const info = native().systemInfo();

  it("reports CPU features and the active kernel ISA", () => {
    expect(["avx512vnni", "avx2", "scalar"]).toContain(info.cpu.isa);
    if (info.cpu.isa !== "scalar") expect(info.cpu.avx2 && info.cpu.fma && info.cpu.f16c).toBe(true);
    if (info.cpu.isa === "avx512vnni") expect(info.cpu.avx512vnni).toBe(true);
  });

  it("lowers the kernel ISA on request, never above the machine's, and refuses unknown names", () => {
    const best = info.cpu.isa;
    try {
      expect(native().setCpuIsa("scalar")).toBe("scalar");
      expect(native().systemInfo().cpu.isa).toBe("scalar");
      // Asking for more than the machine has gives its best.
      expect(native().setCpuIsa("avx512vnni")).toBe(best);
      expect(() => native().setCpuIsa("sse9" as never)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    } finally {
      native().setCpuIsa(best);
    }
  });

  it("reports CUDA availability, with a reason when unavailable", () => {
    if (info.cuda.available) {
      expect(info.cuda.deviceCount).toBeGreaterThan(0);
      expect(info.cuda.deviceName?.length).toBeGreaterThan(0);
    } else {
      expect(info.cuda.deviceCount).toBe(0);
      expect(info.cuda.reason?.length).toBeGreaterThan(10);
    }
  });

  it.runIf(hasShared && !info.cuda.available)("auto falls back to the CPU and cuda is a coded error", async () => {
    const model = await loadModel(stories260K, { backend: "auto", threads: 1 });
    expect(model.info.backend).toBe("cpu");
    expect(model.info.backendNote).toContain("CUDA unavailable");
    model.dispose();
    let code: string | undefined;
    try {
      await loadModel(stories260K, { backend: "cuda" });
    } catch (e) {
      code = isTesseraError(e) ? e.code : String(e);
    }
    expect(code).toBe("ERR_BACKEND_UNAVAILABLE");
  });
});
