// A bar chart in SVG: enough for calls and errors per hour or day, with no library to ship.
export function Bars(props: { label: string; rows: { x: string; calls: number; errors: number }[] }) {
  const max = Math.max(1, ...props.rows.map((r) => r.calls));
  const width = Math.max(120, props.rows.length * 28);
  return (
    <figure class="chart">
      <svg
        role="img"
        aria-label={props.label}
        viewBox={`0 0 ${width} 120`}
        width={width * 2}
        height="140"
        preserveAspectRatio="none"
      >
        {props.rows.map((r, i) => {
          const h = (r.calls / max) * 100;
          const e = (r.errors / max) * 100;
          return (
            <g key={r.x}>
              <rect x={i * 28 + 4} y={110 - h} width={20} height={h} class="bar" />
              <rect x={i * 28 + 4} y={110 - e} width={20} height={e} class="bar-error" />
            </g>
          );
        })}
      </svg>
      <figcaption>{props.label} (dark: calls, red: errors)</figcaption>
    </figure>
  );
}
