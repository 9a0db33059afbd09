// Largest-Triangle-Three-Buckets (Steinarsson, 2013): keeps the visual shape of a long series with a
// few hundred points, in one O(n) pass, so a 100,000-point metric draws without freezing the page.

/** xs, ys: arrays of numbers (same length, xs ascending). Returns [xs, ys] with at most `threshold` points. */
export function lttb(xs, ys, threshold) {
  const n = xs.length;
  if (threshold >= n || threshold < 3) return [Array.from(xs), Array.from(ys)];
  const outX = new Float64Array(threshold);
  const outY = new Float64Array(threshold);
  const every = (n - 2) / (threshold - 2);
  let a = 0;
  outX[0] = xs[0];
  outY[0] = ys[0];
  for (let i = 0; i < threshold - 2; i++) {
    const avgStart = Math.floor((i + 1) * every) + 1;
    const avgEnd = Math.min(Math.floor((i + 2) * every) + 1, n);
    let avgX = 0;
    let avgY = 0;
    for (let j = avgStart; j < avgEnd; j++) {
      avgX += xs[j];
      avgY += ys[j];
    }
    const len = Math.max(1, avgEnd - avgStart);
    avgX /= len;
    avgY /= len;
    const rangeStart = Math.floor(i * every) + 1;
    const rangeEnd = Math.floor((i + 1) * every) + 1;
    let maxArea = -1;
    let next = rangeStart;
    for (let j = rangeStart; j < rangeEnd; j++) {
      const area = Math.abs((xs[a] - avgX) * (ys[j] - ys[a]) - (xs[a] - xs[j]) * (avgY - ys[a]));
      if (area > maxArea) {
        maxArea = area;
        next = j;
      }
    }
    outX[i + 1] = xs[next];
    outY[i + 1] = ys[next];
    a = next;
  }
  outX[threshold - 1] = xs[n - 1];
  outY[threshold - 1] = ys[n - 1];
  return [Array.from(outX), Array.from(outY)];
}
