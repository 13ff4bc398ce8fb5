/** Comparison of two logits vectors the way the conformance tests and harness report it. */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** ||a - b||₂ / ||b||₂ */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / den);
}

/** Margin between the best and second-best logit: a top-1 flip is only meaningful above it. */
export function top2Margin(x: ArrayLike<number>): number {
  let a = -Infinity;
  let b = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > a) {
      b = a;
      a = x[i];
    } else if (x[i] > b) b = x[i];
  }
  return a - b;
}

/** sqrt(mean(x²)) */
export function rms(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return Math.sqrt(s / x.length);
}
