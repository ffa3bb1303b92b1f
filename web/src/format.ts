// Numbers and text as the view prints them.

/** Whitespace made visible: a newline shows as ↵ (and still breaks the line), a tab as →. */
export function visibleWhitespace(text: string): string {
  return text.replace(/\r/g, "␍").replace(/\t/g, "→").replace(/\n/g, "↵\n");
}

/** A token's text for a table cell: quoted, with every whitespace character shown. */
export function quoted(text: string): string {
  return `"${text.replace(/ /g, "·").replace(/\r/g, "␍").replace(/\t/g, "→").replace(/\n/g, "↵")}"`;
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
  if (value < 1e-3) return `${(value * 1e6).toFixed(0)} µs`;
  if (value < 1) return `${(value * 1e3).toFixed(value < 0.01 ? 2 : 1)} ms`;
  if (value < 120) return `${value.toFixed(2)} s`;
  return `${Math.floor(value / 60)} min ${Math.round(value % 60)} s`;
}

export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let size = value;
  let unit = 0;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit += 1;
  }
  return `${size.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

export function count(value: number): string {
  return value.toLocaleString("en-US");
}

/** Latency on a 0..1 scale: 1 ms and below is 0, 1 s and above is 1 (logarithmic). */
export function latencyScale(latencyS: number): number {
  if (!(latencyS > 0)) return 0;
  return Math.min(1, Math.max(0, (Math.log10(latencyS) + 3) / 3));
}
