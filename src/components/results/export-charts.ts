/** The charts shown inside `root` (wrappers with data-chart-name), as SVG text for the run's export zip. */
export function collectChartSvgs(root: HTMLElement): Record<string, string> {
  const charts: Record<string, string> = {};
  for (const wrapper of root.querySelectorAll<HTMLElement>('[data-chart-name]')) {
    const name = wrapper.dataset.chartName;
    // Plot puts the legend in its own svg; the chart is the last one.
    const svgs = wrapper.querySelectorAll('svg');
    const svg = svgs[svgs.length - 1];
    if (name && svg) charts[name] = new XMLSerializer().serializeToString(svg);
  }
  return charts;
}

/** Saves a Blob under `fileName` through the browser's download. */
export function download(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
