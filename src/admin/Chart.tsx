// A small time-series chart (uPlot) with one line per instance. The plot is created once per set of instances and fed
// new data on every poll; it follows its container's width.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { isoTemplate } from './format';
import type { Series } from './history';

/** Line colours, one per instance in id order (repeating past eight). */
const COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];
const HEIGHT = 160;
/** The x axis spans at least this many seconds, so the first readings do not stretch across the whole chart. */
const MIN_SPAN_S = 60;
/** Tick steps of the y axis of a count: whole numbers only. */
const WHOLE_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000];

export function colourOf(index: number): string {
  return COLOURS[index % COLOURS.length]!;
}

interface ChartProps {
  title: string;
  /** The instances, in the order of `data`'s series. */
  ids: string[];
  data: Series;
  /** How a value reads on the axis and in the legend. */
  format: (value: number) => string;
  /** A count: ticks on whole numbers. */
  whole?: boolean;
}

export function Chart({ title, ids, data, format, whole = false }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const key = ids.join('\n');

  useEffect(() => {
    const element = box.current!;
    const show = (_self: uPlot, value: number | null) => (value === null ? '–' : format(value));
    const created = new uPlot(
      {
        width: Math.max(element.clientWidth, 200),
        height: HEIGHT,
        // The legend names the instances; values show on hover (live) only where a pointer can hover.
        legend: { show: true, live: matchMedia('(hover: hover)').matches },
        fmtDate: (template) => uPlot.fmtDate(isoTemplate(template)),
        cursor: { drag: { x: false, y: false } },
        scales: {
          // From the data itself: uPlot widens a single reading to a whole day before asking.
          x: {
            time: true,
            range: (self, min, max) => {
              const times = self.data[0];
              const last = times[times.length - 1] ?? max;
              return [Math.min(times[0] ?? min, last - MIN_SPAN_S), last];
            },
          },
          y: { range: (_self, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] },
        },
        axes: [{}, { size: 68, values: (_self, ticks) => ticks.map((tick) => format(tick)), ...(whole ? { incrs: WHOLE_STEPS } : {}) }],
        series: [{}, ...ids.map((id, i) => ({ label: id, stroke: colourOf(i), width: 2, spanGaps: false, value: show }))],
      },
      data,
      element,
    );
    plot.current = created;
    const resize = new ResizeObserver(() => created.setSize({ width: Math.max(element.clientWidth, 200), height: HEIGHT }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      created.destroy();
      plot.current = null;
    };
    // A new plot only when the instances change; data arrives through setData below.
  }, [key]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} />
    </figure>
  );
}
