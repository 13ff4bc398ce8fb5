export { TesseraError, isTesseraError } from "./errors.js";
export type { TesseraErrorCode } from "./errors.js";
