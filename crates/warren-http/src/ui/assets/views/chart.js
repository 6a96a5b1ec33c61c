// Live line charts (uPlot) over a ring of samples, and their seeding from the management
// API's history: a page asks once with `?lengths_age=…&msg_rates_age=…` and draws the
// broker's recent samples at once (as RabbitMQ's UI does), then pushes one point per poll.
// Each chart's element carries `data-points` (how many samples it holds), `data-newest`
// (the newest sample's time, seconds) and `data-last` (its values, JSON), so a browser
// test can see the chart move.
import { h } from "../dom.js";
import { dig } from "../format.js";

export const POLL_MS = 5000;
export const POINTS = 120; // ten minutes at one sample per 5 s

/** The message rates the overview and a queue chart: [API key, label, colour]. */
export const RATES = [
  ["publish", "Publish", "#2f6fde"],
  ["deliver_get", "Deliver / get", "#2e7d32"],
  ["ack", "Ack", "#8e24aa"],
  ["redeliver", "Redeliver", "#c62828"],
  ["confirm", "Confirm", "#ef6c00"],
];

/** Queue depths: [API key, label, colour]. */
export const QUEUED = [
  ["messages_ready", "Ready", "#2f6fde"],
  ["messages_unacknowledged", "Unacked", "#ef6c00"],
  ["messages", "Total", "#667085"],
];

/** The query string asking for the history a chart can show (`age` seconds back). */
export function historyQuery(ageSeconds) {
  const incr = POLL_MS / 1000;
  return `lengths_age=${ageSeconds}&lengths_incr=${incr}&msg_rates_age=${ageSeconds}&msg_rates_incr=${incr}`;
}

/** The time axis: the samples' span, at least a minute, at most ten (`min`/`max` are
 * null before the first sample). */
function timeRange(min, max) {
  const hi = Number.isFinite(max) ? max : Date.now() / 1000;
  const lo = Number.isFinite(min) ? min : hi;
  if (hi - lo < 60) return [hi - 60, hi];
  return [Math.max(lo, hi - (POINTS * POLL_MS) / 1000), hi];
}

/** A live line chart in `el`: `series` are [key, label, colour]; `format` renders a value. */
export function chart(el, title, series, format) {
  const data = [[], ...series.map(() => [])];
  const width = () => Math.max(260, el.clientWidth - 16);
  const opts = {
    title,
    width: width(),
    height: 200,
    series: [
      {},
      ...series.map(([, label, stroke]) => ({ label, stroke, width: 2, value: (u, v) => (v == null ? "–" : format(v)) })),
    ],
    axes: [{}, { values: (u, ticks) => ticks.map(format), size: 70 }],
    scales: {
      // The last ten minutes at most; fewer while the history is shorter.
      x: { time: true, range: (u, min, max) => timeRange(min, max) },
      y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] },
    },
  };
  const plot = window.uPlot ? new window.uPlot(opts, data, el) : null;
  if (!plot) el.append(h("p.error", "The chart library did not load."));
  const show = () => {
    if (data[0].length > POINTS) data.forEach((d) => d.splice(0, d.length - POINTS));
    plot?.setData(data);
    el.dataset.points = String(data[0].length);
    el.dataset.newest = String(data[0][data[0].length - 1] ?? 0);
    el.dataset.last = JSON.stringify(series.map((_, i) => data[i + 1][data[i + 1].length - 1] ?? null));
  };
  return {
    /** Append one sample at `t` (seconds). */
    push(t, values) {
      if (data[0].length && t <= data[0][data[0].length - 1]) return;
      data[0].push(t);
      values.forEach((v, i) => data[i + 1].push(v));
      show();
    },
    /** Replace the samples with `points`: [[t, values], ...] oldest first, leaving out
     * those before `since` (seconds; the broker's history reads 0 before it started). */
    seed(points, since = 0) {
      data.forEach((d) => (d.length = 0));
      for (const [t, values] of points) {
        if (t < since) continue;
        data[0].push(t);
        values.forEach((v, i) => data[i + 1].push(v));
      }
      show();
    },
    resize() {
      plot?.setSize({ width: width(), height: 200 });
    },
  };
}

/** `[timestamp ms, value]` oldest first from a `_details` object's samples. */
function samples(details) {
  return (details?.samples ?? []).map((s) => [s.timestamp, s.sample]).sort((a, b) => a[0] - b[0]);
}

/** Depth history: one point per sample time of `obj`'s `<key>_details.samples`. */
export function lengthHistory(obj, keys) {
  const cols = keys.map(([k]) => samples(obj?.[`${k}_details`]));
  return (cols[0] ?? []).map(([t], i) => [t / 1000, cols.map((c) => c[i]?.[1] ?? 0)]);
}

/** Rate history from counter samples: each point is the rise between two samples per
 * second (a counter reset reads as 0, not a negative rate). An object that has never
 * counted a message has no samples (no `message_stats`): it gets rate 0 at the times of
 * `idleTimes` (its depth samples), so its chart spans the same minutes as the depth's. */
export function rateHistory(stats, keys, idleTimes = []) {
  const cols = keys.map(([k]) => samples(dig(stats, `${k}_details`)));
  const times = cols.find((c) => c.length)?.map(([t]) => t) ?? [];
  if (!times.length) return idleTimes.map(([t]) => [t, keys.map(() => 0)]);
  const out = [];
  for (let i = 1; i < times.length; i += 1) {
    const dt = (times[i] - times[i - 1]) / 1000;
    if (dt <= 0) continue;
    out.push([times[i] / 1000, cols.map((c) => (c[i] && c[i - 1] ? Math.max(0, (c[i][1] - c[i - 1][1]) / dt) : 0))]);
  }
  return out;
}
