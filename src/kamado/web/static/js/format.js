// Times in the user's own time zone (the browser's), durations, and status badges.

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  timeZoneName: "short",
});

export const timeZone = Intl.DateTimeFormat().resolvedOptions().timeZone;

/** ISO strings and epoch seconds both become Date objects (the API uses both). */
export function toDate(value) {
  if (value === null || value === undefined || value === "") return null;
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function fmtTime(value) {
  const d = toDate(value);
  return d ? dateTime.format(d) : "—";
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function between(start, end) {
  const a = toDate(start);
  const b = toDate(end) || (a ? new Date() : null);
  return a && b ? (b - a) / 1000 : null;
}

export function ago(value) {
  const d = toDate(value);
  if (!d) return "—";
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtNum(v, digits = 4) {
  if (v === null || v === undefined || v === "") return "—";
  const n = Number(v);
  if (!Number.isFinite(n)) return String(v);
  if (Number.isInteger(n)) return n.toLocaleString();
  return Math.abs(n) >= 1e5 || (Math.abs(n) < 1e-3 && n !== 0) ? n.toExponential(3) : n.toPrecision(digits);
}

const GOOD = new Set(["Completed", "InService", "Succeeded", "Active", "SUCCEEDED", "ACTIVE", "ENABLED"]);
const BAD = new Set(["Failed", "Stopped", "Aborted", "RolledBack", "NonRetryableError", "TimedOut", "FAILED", "ABORTED",
  "TIMED_OUT"]);
const BUSY = new Set(["InProgress", "Creating", "Updating", "Stopping", "Pending", "RollingBack", "Deleting",
  "SystemUpdating", "Running", "RUNNING"]);

export function statusClass(status) {
  if (GOOD.has(status)) return "ok";
  if (BAD.has(status)) return "bad";
  if (BUSY.has(status)) return "busy";
  return "neutral";
}

export function isLive(status) {
  return BUSY.has(status);
}
