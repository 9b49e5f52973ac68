// A plain SVG chart: one horizontal bar per target, drawn as value / target
// so every row shares one scale and one target line (at 1.0).

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderSvg({ title, subtitle, verdicts }) {
  const rowH = 30;
  const labelW = 500;
  const barW = 380;
  const valueW = 250;
  const top = 78;
  const width = labelW + barW + valueW + 30;
  const height = top + verdicts.length * rowH + 50;
  const scaleMax = 2; // value/target; longer bars are clipped with an arrow
  const x0 = labelW + 10;
  const xOf = (f) => x0 + (Math.min(f, scaleMax) / scaleMax) * barW;
  const out = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`);
  out.push(`<rect width="100%" height="100%" fill="#ffffff"/>`);
  out.push(`<text x="12" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="12" y="44" fill="#555">${esc(subtitle)}</text>`);
  out.push(`<text x="12" y="62" fill="#555">bar = median value / target (stall: longest over rounds); the line marks the target; green = met, red = missed</text>`);
  // grid
  for (const f of [0, 0.5, 1, 1.5, 2]) {
    const x = xOf(f);
    out.push(`<line x1="${x}" y1="${top - 6}" x2="${x}" y2="${top + verdicts.length * rowH}" stroke="${f === 1 ? '#222' : '#ddd'}" stroke-width="${f === 1 ? 1.5 : 1}"${f === 1 ? ' stroke-dasharray="4 3"' : ''}/>`);
    out.push(`<text x="${x}" y="${top + verdicts.length * rowH + 16}" text-anchor="middle" fill="#555">${f === 1 ? 'target' : `${f}x target`}</text>`);
  }
  verdicts.forEach((v, i) => {
    const y = top + i * rowH;
    const frac = v.value / v.max;
    const ok = v.met && !v.broken;
    const color = v.broken ? '#999' : ok ? '#2e9e44' : '#d64545';
    const label = `${v.group}/${v.scenario} · ${v.label} · ${v.kind === 'ratio' ? `÷ ${v.ref}` : v.kind}`;
    out.push(`<text x="12" y="${y + 19}">${esc(label.length > 76 ? label.slice(0, 75) + '…' : label)}</text>`);
    if (Number.isFinite(frac)) {
      out.push(`<rect x="${x0}" y="${y + 6}" width="${Math.max(1, xOf(frac) - x0).toFixed(1)}" height="${rowH - 12}" fill="${color}" rx="2"/>`);
      if (frac > scaleMax) out.push(`<text x="${xOf(scaleMax) + 4}" y="${y + 19}" fill="${color}" font-weight="bold">▶</text>`);
    }
    // the target tick
    out.push(`<line x1="${xOf(1)}" y1="${y + 3}" x2="${xOf(1)}" y2="${y + rowH - 3}" stroke="#111" stroke-width="2"/>`);
    const text = v.broken ? 'BROKEN' : `${v.compact}  (${v.short})  ${ok ? 'met' : 'MISSED'}`;
    out.push(`<text x="${x0 + barW + 22}" y="${y + 19}" fill="${color}">${esc(text.length > 44 ? text.slice(0, 43) + '…' : text)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
