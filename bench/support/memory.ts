import { readFileSync } from 'node:fs';

export interface RssSampler {
  /** Stops sampling and answers the highest RSS seen, in bytes. */
  stop(): number;
}

/** Samples this process's resident set size every `intervalMs`, keeping the peak. */
export function sampleOwnRss(intervalMs = 50): RssSampler {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss);
    },
  };
}

/** Another process's current and peak resident set size (VmRSS, VmHWM), in bytes; null once it has exited. */
export function readProcessMemory(pid: number): { rss: number; peak: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kib('VmRSS'), peak: kib('VmHWM') };
  } catch {
    return null;
  }
}

/** Samples another process's RSS every `intervalMs`; stop() answers the peak (the larger of the samples and VmHWM). */
export function sampleProcessRss(pid: number, intervalMs = 100): RssSampler {
  let peak = 0;
  const read = () => {
    const memory = readProcessMemory(pid);
    if (memory) peak = Math.max(peak, memory.rss, memory.peak);
  };
  read();
  const timer = setInterval(read, intervalMs);
  timer.unref();
  return {
    stop() {
      read();
      clearInterval(timer);
      return peak;
    },
  };
}

export function megabytes(bytes: number): number {
  return Math.round((bytes / 1024 / 1024) * 10) / 10;
}
