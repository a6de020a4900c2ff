import type { Row } from './measure';

/** One bar of the chart. */
interface Bar {
  readonly label: string;
  readonly value: number;
  readonly kind: 'reference' | 'appendonly' | 'peer';
}

const COLOURS = { reference: '#9aa0a6', appendonly: '#1a73e8', peer: '#e8710a' } as const;

/**
 * An SVG bar chart of commands/s, on a log scale (the rows span five orders of magnitude, from
 * fsync-bound single commands to a bare Map), references in grey, peers in orange.
 */
export function barChart(
  title: string,
  sections: readonly { title: string; rows: readonly Row[] }[],
): string {
  const bars: Bar[] = [];
  for (const section of sections) {
    for (const row of section.rows) {
      if (!(row.opsPerSec > 0) || /read back|replay/.test(row.name)) continue; // commands/s only
      const kind = row.name.startsWith('reference')
        ? 'reference'
        : section.title.startsWith('Peers')
          ? 'peer'
          : 'appendonly';
      bars.push({ label: row.name.replace(/^reference: /, 'ref: '), value: row.opsPerSec, kind });
    }
  }
  const labelWidth = 430;
  const plotWidth = 520;
  const barHeight = 16;
  const gap = 5;
  const top = 50;
  const height = top + bars.length * (barHeight + gap) + 40;
  const max = Math.max(10, ...bars.map((b) => b.value));
  const decades = Math.ceil(Math.log10(max));
  const x = (v: number) => labelWidth + (Math.log10(Math.max(v, 1)) / decades) * plotWidth;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelWidth + plotWidth + 120}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="40" fill="#555">commands/s, log scale · grey: reference · blue: appendonly · orange: peers</text>`,
  ];
  for (let d = 0; d <= decades; d++) {
    const gx = x(10 ** d);
    parts.push(`<line x1="${gx}" y1="${top - 4}" x2="${gx}" y2="${height - 30}" stroke="#eee"/>`);
    parts.push(`<text x="${gx}" y="${height - 16}" text-anchor="middle" fill="#555">1e${d}</text>`);
  }
  bars.forEach((bar, i) => {
    const y = top + i * (barHeight + gap);
    parts.push(`<text x="${labelWidth - 6}" y="${y + 12}" text-anchor="end">${esc(bar.label)}</text>`);
    parts.push(
      `<rect x="${labelWidth}" y="${y}" width="${Math.max(1, x(bar.value) - labelWidth)}" height="${barHeight}" fill="${COLOURS[bar.kind]}"/>`,
    );
    parts.push(
      `<text x="${x(bar.value) + 4}" y="${y + 12}" fill="#333">${Math.round(bar.value).toLocaleString('en-US')}</text>`,
    );
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
