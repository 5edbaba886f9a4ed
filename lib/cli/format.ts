/** Formatting shared by the command-line tools. */

/**
 * Python's `'{:.Ng}'`-style formatting used by the seed (`'{:>.9}'.format(x)`):
 * N significant digits, trailing zeros dropped, exponent form outside [1e-4, 10^N).
 */
export function formatPy(x: number, digits = 9): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return '0.0';
  const exp = Math.floor(Math.log10(Math.abs(Number(x.toPrecision(digits)))));
  if (exp < -4 || exp >= digits) {
    const [m, e] = x.toExponential(digits - 1).split('e');
    const mant = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const n = Number(e);
    return `${mant}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  let s = x.toPrecision(digits);
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '.0');
  return s;
}

/** The seed's epoch line: `[Epoch:    1] cost = 0.629913926`. */
export function epochLine(epoch: number, cost: number): string {
  return `[Epoch: ${String(epoch).padStart(4)}] cost = ${formatPy(cost, 9)}`;
}

/** A one-line progress bar: `[=====>    ] 312/600  loss 0.4123  1520 samples/s`. */
export function progressBar(done: number, total: number, width = 24): string {
  const frac = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(frac * width);
  return `[${'='.repeat(Math.max(0, filled - 1))}${filled > 0 ? (filled === width ? '=' : '>') : ''}${' '.repeat(width - filled)}]`;
}
