/**
 * Memory and CPU of the Chromium this Node process launched, from /proc (Linux): the benches report the peak sum
 * of VmRSS over its renderer processes (the page and its workers live there) and Chromium's CPU seconds.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ChromiumProcess {
  pid: number;
  renderer: boolean;
  /** utime + stime, in clock ticks (USER_HZ, 100 a second on Linux). */
  cpuTicks: number;
  /** Minor page faults (first touches of fresh memory), all threads, ended ones included. */
  minorFaults: number;
  rssMb: number;
}

/** The processes descended from this Node process (the launched Chromium's). */
export function chromiumProcesses(): ChromiumProcess[] {
  const info = new Map<
    number,
    { ppid: number; cpuTicks: number; minorFaults: number; renderer: boolean; rssMb: number }
  >();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // Fields after the parenthesised command name: 3 state, 4 ppid, … 10 minflt, … 14 utime, 15 stime.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      info.set(pid, {
        ppid: Number(fields[1]),
        cpuTicks: Number(fields[11]) + Number(fields[12]),
        minorFaults: Number(fields[7]),
        renderer: readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer'),
        rssMb: rss ? Number(rss[1]) / 1024 : 0,
      });
    } catch {
      // The process ended while we looked.
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = info.get(pid)?.ppid, hops = 0; p !== undefined && hops < 10; p = info.get(p)?.ppid, hops++) {
      if (p === process.pid) return true;
    }
    return false;
  };
  return [...info]
    .filter(([pid]) => ours(pid))
    .map(([pid, p]) => ({
      pid,
      renderer: p.renderer,
      cpuTicks: p.cpuTicks,
      minorFaults: p.minorFaults,
      rssMb: p.rssMb,
    }));
}

export interface RendererSampler {
  /** Largest sum of renderer VmRSS seen so far, in MB. */
  readonly peakMb: number;
  /** CPU seconds of all of this Chromium's processes since the sampler started (finished ones until they ended). */
  cpuSeconds(): number;
  stop(): void;
}

/** Samples every `intervalMs` until stopped. */
export function sampleRenderers(intervalMs = 250): RendererSampler {
  let peakMb = 0;
  const first = new Map<number, number>();
  const last = new Map<number, number>();
  const sample = () => {
    let sum = 0;
    for (const p of chromiumProcesses()) {
      if (!first.has(p.pid)) first.set(p.pid, p.cpuTicks);
      last.set(p.pid, p.cpuTicks);
      if (p.renderer) sum += p.rssMb;
    }
    peakMb = Math.max(peakMb, sum);
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    get peakMb() {
      return peakMb;
    },
    cpuSeconds() {
      sample();
      let ticks = 0;
      for (const [pid, end] of last) ticks += end - (first.get(pid) ?? end);
      return ticks / 100;
    },
    stop: () => clearInterval(timer),
  };
}
