// Summaries of raw rounds, the console tables and the Markdown report.

import { max, median, min, summarizeSamples } from './harness.mjs';

const perOp = (res) => (res && !res.error && res.ops > 0 ? res.ms / res.ops : NaN);

export function formatTime(ms) {
  if (!Number.isFinite(ms)) return '—';
  const us = ms * 1000;
  if (us < 1) return `${(us * 1000).toFixed(0)} ns`;
  if (us < 10) return `${us.toFixed(2)} µs`;
  if (us < 1000) return `${us.toFixed(us < 100 ? 1 : 0)} µs`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms.toFixed(ms < 100 ? 1 : 0)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export const formatRatio = (x) => (Number.isFinite(x) ? `${x < 1 ? x.toFixed(3) : x.toFixed(2)}x` : '—');

function formatBytes(b) {
  if (!Number.isFinite(b)) return '—';
  if (b < 1024 * 1024) return `${(b / 1024).toFixed(0)} KiB`;
  return `${(b / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * Target kinds: ratio (median per-round ratio to floor `ref`), stall (longest
 * stall over rounds, ms), rss (median RSS growth / history bytes), time
 * (median time per op, ms), vs (median time per op / the median of variant
 * `variant` (default: the same id) in scenario `scenario` of the same group,
 * summarized earlier), info (median over rounds of info field `field`, in `unit`).
 */
function targetText(t, refLabelOf) {
  if (t.kind === 'ratio') return `≤ ${t.max}x ${refLabelOf(t.ref)}`;
  if (t.kind === 'stall') return `stall ≤ ${t.max} ms`;
  if (t.kind === 'rss') return `RSS ≤ ${t.max}x history`;
  if (t.kind === 'time') return `≤ ${formatTime(t.max)} per ${t.per ?? 'op'}`;
  if (t.kind === 'vs') return `≤ ${t.max}x the same in ${t.scenario}`;
  if (t.kind === 'info') return `${t.what ?? t.field} ≤ ${t.max} ${t.unit}`;
  return '?';
}

function shortTarget(t) {
  if (t.kind === 'ratio') return `≤ ${t.max}x`;
  if (t.kind === 'stall') return `stall ≤ ${t.max} ms`;
  if (t.kind === 'rss') return `RSS ≤ ${t.max}x`;
  if (t.kind === 'time') return `≤ ${formatTime(t.max)}`;
  if (t.kind === 'vs') return `≤ ${t.max}x ${t.scenario}`;
  if (t.kind === 'info') return `≤ ${t.max} ${t.unit}`;
  return '?';
}

function infoText(info) {
  if (!info) return '';
  const parts = [];
  if (info.syncsPerStep !== undefined) parts.push(`${info.syncsPerStep.toFixed(2)} syncs/step`);
  if (info.metaWrites !== undefined) parts.push(`${info.metaWrites} meta writes`);
  if (info.closeMs !== undefined) parts.push(`close ${formatTime(info.closeMs)}`);
  if (info.stepsReadPerLoad !== undefined) parts.push(`${info.stepsReadPerLoad} steps read/load`);
  if (info.stepsReadPerCall !== undefined) parts.push(`${+info.stepsReadPerCall.toFixed(1)} steps read/call`);
  if (info.bytesWrittenPerCall !== undefined) parts.push(`${formatBytes(info.bytesWrittenPerCall)} written/call`);
  if (info.ackToEventP50Ms !== undefined) {
    const ms = info.ackToEventP50Ms;
    parts.push(`p50 ${ms < 0 ? `${formatTime(-ms)} before` : `${formatTime(ms)} after`} the append returned`);
  }
  if (info.bytesPerSession !== undefined) parts.push(`${info.bytesPerSession.toFixed(0)} B/session indexed (heap + array buffers, fresh process)`);
  return parts.join(', ');
}

/** Median of each numeric info field over rounds. */
function medianInfo(results) {
  const infos = results.filter((r) => r && !r.error && r.info).map((r) => r.info);
  if (infos.length === 0) return null;
  const out = {};
  for (const key of Object.keys(infos[0])) out[key] = median(infos.map((i) => i[key]));
  return out;
}

function stallOf(results) {
  const v = results.filter((r) => r && !r.error && r.stallMs !== undefined).map((r) => r.stallMs);
  return v.length ? { median: median(v), max: max(v), values: v } : null;
}

function rssOf(results) {
  const v = results.filter((r) => r && !r.error && r.rssGrowthBytes !== undefined);
  if (v.length === 0) return null;
  const x = v.filter((r) => r.historyBytes > 0).map((r) => r.rssGrowthBytes / r.historyBytes);
  return {
    medianBytes: median(v.map((r) => r.rssGrowthBytes)),
    maxBytes: max(v.map((r) => r.rssGrowthBytes)),
    historyBytes: median(v.map((r) => r.historyBytes ?? NaN)),
    medianX: median(x),
    maxX: max(x),
  };
}

function pooledSamples(results) {
  const arrays = results.filter((r) => r && !r.error && r.samples).map((r) => r.samples);
  if (arrays.length === 0) return null;
  const total = arrays.reduce((n, a) => n + a.length, 0);
  const pooled = new Float64Array(total);
  let k = 0;
  for (const a of arrays) {
    pooled.set(a, k);
    k += a.length;
  }
  return summarizeSamples(pooled);
}

/**
 * Turns the raw rounds of one scenario into table rows, target verdicts and a
 * JSON-able raw record. `earlier`: the summaries of the group's scenarios
 * before this one, which `vs` targets refer to.
 */
export function summarizeScenario(group, scenario, rounds, earlier = []) {
  const floorLabel = Object.fromEntries(scenario.floors.map((f) => [f.id, f.label.replace(/^floor: /, '')]));
  const shortOf = Object.fromEntries(scenario.floors.filter((f) => f.short).map((f) => [f.id, f.short]));
  const refLabelOf = (id) => shortOf[id] ?? (id === 'fdatasync' ? 'fdatasync floor' : id === 'design' ? 'design floor' : `${id} floor`);
  const floorPerRound = {};
  for (const f of scenario.floors) {
    floorPerRound[f.id] = rounds.map((r) => (perOp(r.before[f.id]) + perOp(r.after[f.id])) / 2);
  }
  const rows = [];
  const verdicts = [];
  const errorsOf = (results) => results.filter((r) => r && r.error).map((r) => r.error);

  for (const f of scenario.floors) {
    const results = rounds.flatMap((r) => [r.before[f.id], r.after[f.id]]);
    const values = floorPerRound[f.id];
    const ratios = f.vs ? values.map((v, i) => v / floorPerRound[f.vs][i]) : values.map(() => 1);
    const drift = rounds.map((r) => perOp(r.after[f.id]) / perOp(r.before[f.id]));
    const errors = errorsOf(results);
    rows.push({
      kind: 'floor',
      id: f.id,
      label: f.label,
      ref: f.vs ?? f.id,
      refLabel: f.vs ? refLabelOf(f.vs) : 'itself',
      perOp: values,
      medianMs: median(values),
      minMs: min(results.map(perOp)),
      samples: pooledSamples(results),
      ratios,
      ratio: median(ratios),
      drift: median(drift),
      stall: stallOf(results),
      rss: rssOf(results),
      info: medianInfo(results),
      targets: [],
      broken: errors[0] ?? null,
    });
  }

  for (const v of scenario.variants) {
    const results = rounds.map((r) => r.variants[v.id]);
    const values = results.map(perOp);
    const errors = errorsOf(results);
    const refs = Array.isArray(v.ref) ? v.ref : [v.ref];
    const stall = stallOf(results);
    const rss = rssOf(results);
    refs.forEach((ref, k) => {
      const ratios = values.map((x, i) => x / floorPerRound[ref][i]);
      const ratio = median(ratios);
      const targets = (v.targets ?? []).filter((t) => (t.kind === 'ratio' ? t.ref === ref : k === 0));
      const row = {
        kind: 'variant',
        id: v.id,
        label: v.label,
        ref,
        refLabel: refLabelOf(ref),
        perOp: values,
        medianMs: median(values),
        minMs: min(values),
        samples: pooledSamples(results),
        ratios,
        ratio,
        stall: k === 0 ? stall : null,
        rss: k === 0 ? rss : null,
        info: k === 0 ? medianInfo(results) : null,
        targets: [],
        broken: errors[0] ?? null,
      };
      for (const t of targets) {
        let value;
        let shown;
        let compact;
        if (t.kind === 'ratio') {
          value = ratio;
          shown = formatRatio(ratio);
          compact = shown;
        } else if (t.kind === 'time') {
          value = row.medianMs;
          shown = formatTime(value);
          compact = shown;
        } else if (t.kind === 'vs') {
          const other = earlier.find((x) => x.id === t.scenario)?.rows.find((r) => r.kind === 'variant' && r.id === (t.variant ?? v.id));
          const base = other && !other.broken ? other.medianMs : NaN;
          value = row.medianMs / base;
          shown = `${formatRatio(value)} (${formatTime(row.medianMs)} vs ${formatTime(base)})`;
          compact = formatRatio(value);
        } else if (t.kind === 'info') {
          value = row.info?.[t.field] ?? NaN;
          shown = Number.isFinite(value) ? `${value.toFixed(0)} ${t.unit}` : '—';
          compact = shown;
        } else if (t.kind === 'stall') {
          value = stall ? stall.max : NaN;
          shown = stall ? `max ${formatTime(stall.max)} (median ${formatTime(stall.median)})` : '—';
          compact = stall ? `max ${formatTime(stall.max)}` : '—';
        } else {
          value = rss ? rss.medianX : NaN;
          shown = rss ? `${formatRatio(rss.medianX)} (max ${formatRatio(rss.maxX)}; ${formatBytes(rss.medianBytes)} for ${formatBytes(rss.historyBytes)})` : '—';
          compact = rss ? `${formatRatio(rss.medianX)} history` : '—';
        }
        const met = !row.broken && Number.isFinite(value) && value <= t.max;
        const verdict = {
          group: group.id,
          scenario: scenario.id,
          variant: v.id,
          label: v.label,
          kind: t.kind,
          ref: t.ref ?? null,
          target: targetText(t, refLabelOf),
          short: shortTarget(t),
          max: t.max,
          value,
          shown,
          compact,
          met,
          broken: row.broken,
        };
        row.targets.push(verdict);
        verdicts.push(verdict);
      }
      rows.push(row);
    });
  }
  return { id: scenario.id, title: scenario.title, note: scenario.note ?? '', unit: scenario.unit, rows, verdicts, floorLabel };
}

function cells(row, show) {
  const s = row.samples;
  const c = [
    row.kind === 'floor' ? row.label : `${row.label}`,
    formatTime(row.medianMs),
    formatTime(row.minMs),
    s ? formatTime(s.p50) : '—',
    s ? formatTime(s.p99) : '—',
    row.kind === 'floor' && row.refLabel === 'itself' ? '' : formatRatio(row.ratio),
    row.kind === 'floor' && row.refLabel === 'itself' ? 'floor' : row.refLabel,
    row.targets.map((t) => t.short).join('; ') || '',
    row.broken ? 'BROKEN' : row.targets.map((t) => (t.met ? 'met' : 'MISSED')).join('; '),
  ];
  if (show.stall) c.push(row.stall && row.kind !== 'floor' ? `${formatTime(row.stall.median)} / ${formatTime(row.stall.max)}` : '');
  if (show.rss) c.push(row.rss ? `${formatBytes(row.rss.medianBytes)} (${formatRatio(row.rss.medianX)})` : '');
  if (show.info) {
    const drift = row.kind === 'floor' && row.drift ? `after/before ${formatRatio(row.drift)}` : '';
    c.push([drift, infoText(row.info)].filter(Boolean).join(', '));
  }
  return c;
}

function header(show) {
  const h = ['variant', 'median', 'min', 'p50', 'p99', 'ratio', 'vs', 'target', 'result'];
  if (show.stall) h.push('stall med/max');
  if (show.rss) h.push('RSS growth (x hist)');
  if (show.info) h.push('notes');
  return h;
}

function showFlags(summary) {
  return {
    stall: summary.rows.some((r) => r.stall),
    rss: summary.rows.some((r) => r.rss),
    info: true,
  };
}

export function textTable(summary) {
  const show = showFlags(summary);
  const head = header(show);
  const body = summary.rows.map((r) => cells(r, show));
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const right = new Set([1, 2, 3, 4, 5]);
  const line = (row) => row.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  const out = [`  ${summary.id}: ${summary.title}`, `  (${summary.note})`, '  ' + line(head), '  ' + widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of body) out.push('  ' + line(row));
  for (const r of summary.rows) if (r.broken) out.push(`  !! ${r.label}: ${r.broken}`);
  return out.join('\n');
}

export function markdownTable(summary) {
  const show = showFlags(summary);
  const head = header(show);
  const esc = (s) => s.replace(/\|/g, '\\|');
  const out = [`#### ${summary.id}: ${summary.title}`, '', `_${summary.note}_`, '', `| ${head.join(' | ')} |`, `|${head.map((_, i) => (i >= 1 && i <= 5 ? '---:' : '---')).join('|')}|`];
  for (const r of summary.rows) out.push(`| ${cells(r, show).map(esc).join(' | ')} |`);
  for (const r of summary.rows) if (r.broken) out.push('', `**BROKEN** ${r.label}: ${esc(r.broken)}`);
  return out.join('\n');
}

export function verdictLine(v) {
  const mark = v.broken ? 'BROKEN' : v.met ? 'met   ' : 'MISSED';
  return `${mark}  ${v.group}/${v.scenario} ${v.label}: ${v.shown}  (target ${v.target})`;
}

/** The raw record of a scenario for latest.json: every round's values, no sample arrays. */
export function rawRounds(scenario, rounds) {
  const strip = (res) => {
    if (!res) return null;
    if (res.error) return { error: res.error };
    const { samples, ...rest } = res;
    return { ...rest, perOpMs: res.ms / res.ops, samples: summarizeSamples(samples) };
  };
  return rounds.map((r, i) => ({
    round: i + 1,
    order: r.order,
    floorsBefore: Object.fromEntries(Object.entries(r.before).map(([k, v]) => [k, strip(v)])),
    variants: Object.fromEntries(Object.entries(r.variants).map(([k, v]) => [k, strip(v)])),
    floorsAfter: Object.fromEntries(Object.entries(r.after).map(([k, v]) => [k, strip(v)])),
  }));
}
