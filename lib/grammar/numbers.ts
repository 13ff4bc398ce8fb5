/**
 * Grammars for JSON numbers within bounds (JSON Schema minimum/maximum and their exclusive
 * forms), built from digit-string ranges: the integers of [lo, hi] are, per digit count, a
 * common prefix, then one digit between the bounds' digits and any digits after it, or one
 * bound's digit and the rest at least (at most) that bound's rest.
 *
 * Bounded non-integers are written with at most 6 fraction digits and 9 integer digits: 15
 * significant digits at most, so that comparing the decimal text with the bound's shortest
 * decimal form gives the same answer as comparing the parsed doubles (two decimals of up to
 * 15 significant digits never round to the same double, and no decimal of up to 15 digits
 * rounds to a double whose shortest form is longer).
 */
import { TesseraError } from "../errors.js";
import { alt, charClass, lit, rep, seq, type Expr } from "./ir.js";

const DIGIT = charClass([[0x30, 0x39]]);

function digitRange(lo: number, hi: number): Expr {
  return lo === hi ? lit(String(lo)) : charClass([[0x30 + lo, 0x30 + hi]]);
}

function anyDigits(n: number): Expr {
  return n === 0 ? seq() : rep(DIGIT, n, n);
}

/** Digit strings of x's length that are >= x (leading zeros allowed). */
function atLeast(x: string): Expr {
  if (x.length === 0) return seq();
  if (/^0*$/.test(x)) return anyDigits(x.length);
  const d = x.charCodeAt(0) - 0x30;
  const rest = x.slice(1);
  const alts = [seq(lit(x[0]), atLeast(rest))];
  if (d < 9) alts.push(seq(digitRange(d + 1, 9), anyDigits(rest.length)));
  return alt(...alts);
}

/** Digit strings of x's length that are <= x (leading zeros allowed). */
function atMost(x: string): Expr {
  if (x.length === 0) return seq();
  if (/^9*$/.test(x)) return anyDigits(x.length);
  const d = x.charCodeAt(0) - 0x30;
  const rest = x.slice(1);
  const alts: Expr[] = [];
  if (d > 0) alts.push(seq(digitRange(0, d - 1), anyDigits(rest.length)));
  alts.push(seq(lit(x[0]), atMost(rest)));
  return alt(...alts);
}

/** Digit strings of equal length n between a and b (a <= b, both n digits, leading zeros kept). */
function between(a: string, b: string): Expr {
  let p = 0;
  while (p < a.length && a[p] === b[p]) p++;
  if (p === a.length) return lit(a);
  const prefix = a.slice(0, p);
  if (p === a.length - 1) return seq(lit(prefix), digitRange(a.charCodeAt(p) - 0x30, b.charCodeAt(p) - 0x30));
  const da = a.charCodeAt(p) - 0x30;
  const db = b.charCodeAt(p) - 0x30;
  const ra = a.slice(p + 1);
  const rb = b.slice(p + 1);
  const alts: Expr[] = [seq(lit(String(da)), atLeast(ra))];
  if (db - da > 1) alts.push(seq(digitRange(da + 1, db - 1), anyDigits(ra.length)));
  alts.push(seq(lit(String(db)), atMost(rb)));
  return seq(lit(prefix), alt(...alts));
}

/** Decimal integers in [lo, hi] (0 <= lo <= hi), written without leading zeros. */
export function naturals(lo: bigint, hi: bigint): Expr {
  const alts: Expr[] = [];
  const los = lo.toString();
  const his = hi.toString();
  for (let len = los.length; len <= his.length; len++) {
    const first = len === 1 ? 0n : 10n ** BigInt(len - 1);
    const last = 10n ** BigInt(len) - 1n;
    const a = lo > first ? lo : first;
    const b = hi < last ? hi : last;
    if (a > b) continue;
    alts.push(between(a.toString(), b.toString()));
  }
  return alt(...alts);
}

/** Integers in [lo, hi] (null: unbounded on that side, up to 16 digits). */
export function integers(lo: bigint | null, hi: bigint | null): Expr {
  const LIMIT = 10n ** 16n - 1n;
  const a = lo ?? -LIMIT;
  const b = hi ?? LIMIT;
  const alts: Expr[] = [];
  if (b >= 0n) alts.push(naturals(a > 0n ? a : 0n, b));
  if (a < 0n) {
    const top = b < -1n ? b : -1n;
    alts.push(seq(lit("-"), naturals(-top, -a)));
  }
  return alt(...alts);
}

// ---------------------------------------------------------------- decimals

const FRACTION_DIGITS = 6;
const UNIT = 10n ** BigInt(FRACTION_DIGITS);
/** Largest magnitude of a bounded non-integer: 9 integer digits. */
const DECIMAL_LIMIT = 10n ** 15n - 1n;

/** A double as an exact decimal fraction: its shortest round-trip digits, scaled by 10^scale. */
function shortestDecimal(x: number): { digits: bigint; scale: number } {
  const [mantissa, exp] = x.toExponential().split("e");
  const negative = mantissa.startsWith("-");
  const [int, frac = ""] = mantissa.replace("-", "").split(".");
  const digits = BigInt(int + frac) * (negative ? -1n : 1n);
  // value = digits * 10^(exp - frac.length)
  return { digits, scale: frac.length - Number(exp) };
}

function floorDiv(a: bigint, b: bigint): bigint {
  const q = a / b;
  return a % b !== 0n && a < 0n !== b < 0n ? q - 1n : q;
}

/** The bound in millionths, rounded toward the inside of the range. */
function toUnits(x: number, up: boolean, exclusive: boolean): bigint {
  const { digits, scale } = shortestDecimal(x);
  // units = digits * 10^(6 - scale)
  const shift = FRACTION_DIGITS - scale;
  let exact: boolean;
  let u: bigint;
  if (shift >= 0) {
    u = digits * 10n ** BigInt(shift);
    exact = true;
  } else {
    const d = 10n ** BigInt(-shift);
    u = floorDiv(digits, d);
    exact = u * d === digits;
    if (!exact && up) u += 1n;
  }
  if (exact && exclusive) u += up ? 1n : -1n;
  return u;
}

/** Fraction suffixes ("" or "." and 1..6 digits) whose value in millionths is in [p, q]. */
function fractions(p: bigint, q: bigint): Expr {
  const alts: Expr[] = [];
  if (p === 0n) alts.push(seq());
  for (let k = 1; k <= FRACTION_DIGITS; k++) {
    const step = 10n ** BigInt(FRACTION_DIGITS - k);
    const lo = (p + step - 1n) / step;
    const hi = q / step;
    if (lo > hi) continue;
    alts.push(seq(lit("."), between(lo.toString().padStart(k, "0"), hi.toString().padStart(k, "0"))));
  }
  return alt(...alts);
}

/** Non-negative decimals in [a, b] millionths, as "int" or "int.frac". */
function magnitudes(a: bigint, b: bigint): Expr {
  const ia = a / UNIT;
  const ib = b / UNIT;
  const fa = a % UNIT;
  const fb = b % UNIT;
  if (ia === ib) return seq(lit(ia.toString()), fractions(fa, fb));
  const alts: Expr[] = [seq(lit(ia.toString()), fractions(fa, UNIT - 1n))];
  if (ib - ia > 1n) alts.push(seq(naturals(ia + 1n, ib - 1n), fractions(0n, UNIT - 1n)));
  alts.push(seq(lit(ib.toString()), fractions(0n, fb)));
  return alt(...alts);
}

export interface Bound {
  value: number;
  exclusive: boolean;
}

function unsupported(message: string): never {
  throw new TesseraError("ERR_UNSUPPORTED_SCHEMA", message);
}

/** JSON numbers x with lo <= x <= hi (or < for exclusive bounds). */
export function decimals(lo: Bound | null, hi: Bound | null, where: string): Expr {
  const big = 1e9;
  if ((lo && Math.abs(lo.value) >= big) || (hi && Math.abs(hi.value) >= big)) {
    // Integers only: the 15-digit argument leaves no room for fraction digits.
    const a = lo ? BigInt(lo.exclusive ? Math.floor(lo.value) + 1 : Math.ceil(lo.value)) : null;
    const b = hi ? BigInt(hi.exclusive ? Math.ceil(hi.value) - 1 : Math.floor(hi.value)) : null;
    if ((a !== null && (a > 10n ** 15n || a < -(10n ** 15n))) || (b !== null && (b > 10n ** 15n || b < -(10n ** 15n))))
      unsupported(`${where}: number bounds beyond ±1e15 are not supported`);
    if (a !== null && b !== null && a > b) unsupported(`${where}: no number this large can be written between the bounds; use bounds below 1e9`);
    return integers(a, b);
  }
  const a = lo ? toUnits(lo.value, true, lo.exclusive) : -DECIMAL_LIMIT;
  const b = hi ? toUnits(hi.value, false, hi.exclusive) : DECIMAL_LIMIT;
  if (a > b) unsupported(`${where}: no number with up to 6 decimals lies between the bounds`);
  const alts: Expr[] = [];
  if (b >= 0n) alts.push(magnitudes(a > 0n ? a : 0n, b));
  if (a < 0n) {
    const top = b < -1n ? b : -1n;
    alts.push(seq(lit("-"), magnitudes(-top, -a)));
  }
  return alt(...alts);
}
