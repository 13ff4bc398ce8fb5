import { native, type SystemInfo } from "./native.js";

/** CPU features in use and whether the CUDA backend can run here (and why not). */
export function systemInfo(): SystemInfo {
  return native().systemInfo();
}
