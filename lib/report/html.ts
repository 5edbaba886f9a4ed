/** HTML helpers for the training report. */

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML content and quoted attribute values (`& < > " '`). */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** 333526 -> "333,526". */
export function commas(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : String(n);
}

/** 0.98765 -> "98.77 %" (digits after the point). */
export function percent(x: number, digits = 2): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(digits)} %` : 'n/a';
}

/** Seconds as "42.1 s", "3 min 05 s" or "1 h 02 min". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return 'n/a';
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min ${String(Math.floor(seconds - m * 60)).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
