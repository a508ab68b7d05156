// A small time-series chart (uPlot) with one line per instance. The plot is created once per set of instances and fed
// new data on every poll; it follows its container's width.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { Series } from './history';

/** Line colours, one per instance in id order (repeating past eight). */
const COLOURS = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d'];
const HEIGHT = 160;

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
}

export function Chart({ title, ids, data, format }: ChartProps) {
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
        legend: { show: true },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, y: { range: (_self, min, max) => [Math.min(0, min), max > 0 ? max * 1.1 : 1] } },
        axes: [{}, { size: 56, values: (_self, ticks) => ticks.map((tick) => format(tick)) }],
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
