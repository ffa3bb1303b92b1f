// Numbers and text as the view prints them.

// Control characters (C0 but tab, newline and carriage return, which visibleWhitespace
// shows; DEL; C1 such as U+009B CSI and U+009D OSC) and bidirectional formatting characters
// (U+202E and its kin reorder what a reader sees): the set of rudder/_shown_text.py, where
// a carriage return is an escape too.
const INVISIBLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/** Untrusted text with every control and bidirectional formatting character written as a
 * visible escape (`\x1b`, `\u202e`): shown, never obeyed. */
export function visibleText(text: string): string {
  return text.replace(INVISIBLE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/** Whitespace made visible: a newline shows as ↵ (and still breaks the line), a tab as →. */
export function visibleWhitespace(text: string): string {
  return text.replace(/\r/g, "␍").replace(/\t/g, "→").replace(/\n/g, "↵\n");
}

// Any character `visibleText` or `visibleWhitespace` rewrites (INVISIBLE with tab, newline
// and carriage return).
const REWRITTEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

/** Untrusted text as the run's text shows it: `visibleWhitespace(visibleText(text))`, with
 * text that holds nothing to rewrite (most tokens) given back at once, since it runs for
 * every piece of a run. */
export function shownText(text: string): string {
  return REWRITTEN.test(text) ? visibleWhitespace(visibleText(text)) : text;
}

/** A token's text for a table cell: quoted, with every whitespace character shown. */
export function quoted(text: string): string {
  return `"${visibleText(text).replace(/ /g, "·").replace(/\r/g, "␍").replace(/\t/g, "→").replace(/\n/g, "↵")}"`;
}

/** A token for a table cell: its text quoted, or, when its bytes are not valid UTF-8 on
 * their own (`bytesB64` set), the bytes as `\xHH` escapes. */
export function tokenLabel(text: string, bytesB64: string | null): string {
  if (bytesB64 === null) return quoted(text);
  const raw = atob(bytesB64);
  let out = "";
  for (let i = 0; i < raw.length; i++) out += `\\x${raw.charCodeAt(i).toString(16).padStart(2, "0")}`;
  return `b"${out}"`;
}

export function percent(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${(value * 100).toFixed(digits)}%`;
}

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  // Each unit is chosen after rounding, so that 0.99996 s reads "1.00 s", not "1000.0 ms".
  if (Math.round(value * 1e6) < 1000) return `${Math.round(value * 1e6)} µs`;
  const ms = value * 1e3;
  if (ms < 10 && Number(ms.toFixed(2)) < 10) return `${ms.toFixed(2)} ms`;
  if (Number(ms.toFixed(1)) < 1000) return `${ms.toFixed(1)} ms`;
  if (Number(value.toFixed(2)) < 120) return `${value.toFixed(2)} s`;
  const whole = Math.round(value);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = value;
  let unit = 0;
  // Move up a unit when the rounded figure would read 1024 or more.
  while (unit < units.length - 1 && Number(size.toFixed(unit === 0 ? 0 : 1)) >= 1024) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function count(value: number): string {
  // Grouped by hand: the first toLocaleString of a page loads the locale's data (tens of ms).
  const [whole, fraction] = String(Math.abs(value)).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+$)/g, ",");
  return `${value < 0 ? "-" : ""}${grouped}${fraction === undefined ? "" : `.${fraction}`}`;
}

/** Latency on a 0..1 scale: 1 ms and below is 0, 1 s and above is 1 (logarithmic). */
export function latencyScale(latencyS: number): number {
  if (!(latencyS > 0)) return 0;
  return Math.min(1, Math.max(0, (Math.log10(latencyS) + 3) / 3));
}
