/**
 * Scheduling helpers for the vmlazyinit drainer thread (Linux; harmless elsewhere): its nice value
 * raised around each domain-lock hold and lowered again after ("priority ceiling": the holder runs
 * at the workers' priority, the nearest user-space match for FreeBSD's priority propagation on
 * mutexes, so a nice-19 holder is not left waiting behind normal threads while others wait for
 * its lock), and a probe that tells whether the thread was descheduled during a hold.
 * Owned by the workers layer (src/workers/*).
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/** Set the calling thread's nice value (Linux: pid 0 = this thread only); true if it took effect. */
export function setThreadNice(nice: number): boolean {
  try {
    setPriority(0, nice);
    return getPriority(0) === nice;
  } catch {
    return false;
  }
}

/** What happened to the priority boost: raised around holds, refused by the OS, or not asked for. */
export type BoostState = 'raised' | 'refused' | 'off';

/**
 * The calling thread's nice value: `base` between lock holds, `hold` while acquiring and holding
 * a lock. Raising a thread's priority needs privilege (CAP_SYS_NICE, or an RLIMIT_NICE that
 * allows it); when the OS refuses, the thread stays at `base` and `state` says 'refused'.
 */
export class ThreadPriority {
  readonly state: BoostState;
  readonly base: number;
  readonly hold: number;
  private raised = false;

  constructor(base: number, hold: number) {
    this.base = base;
    this.hold = hold;
    setThreadNice(base);
    if (hold >= base) {
      this.state = 'off';
      return;
    }
    // Probe once: raise, then lower again.
    const ok = setThreadNice(hold);
    setThreadNice(base);
    this.state = ok ? 'raised' : 'refused';
  }

  /** Before taking the lock. */
  raise(): void {
    if (this.state !== 'raised' || this.raised) return;
    try {
      setPriority(0, this.hold);
      this.raised = true;
    } catch {
      // Keep going at the base priority.
    }
  }

  /** After releasing the lock. */
  lower(): void {
    if (!this.raised) return;
    this.raised = false;
    try {
      setPriority(0, this.base);
    } catch {
      // Lowering never needs privilege; nothing to do.
    }
  }
}

/**
 * How many times the calling thread has been scheduled onto a CPU (the third field of
 * /proc/thread-self/schedstat): if the count moved between just before a lock was taken and just
 * after it was released, the thread was descheduled (preempted, or it slept) during that time.
 * `switches()` is -1 where the file does not exist. A read costs a few µs: take it outside the lock.
 */
export class SchedProbe {
  private fd = -1;
  private readonly buf = new Uint8Array(128);

  constructor() {
    try {
      this.fd = openSync('/proc/thread-self/schedstat', 'r');
    } catch {
      this.fd = -1;
    }
  }

  get available(): boolean {
    return this.fd >= 0;
  }

  switches(): number {
    if (this.fd < 0) return -1;
    let n: number;
    try {
      n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
    } catch {
      return -1;
    }
    // "<run ns> <wait ns> <pcount>\n": parse the third field without allocating.
    const b = this.buf;
    let i = 0;
    for (let f = 0; f < 2; f++) {
      while (i < n && b[i] !== 32) i++;
      i++;
    }
    let v = 0;
    for (; i < n && b[i] >= 48 && b[i] <= 57; i++) v = v * 10 + (b[i] - 48);
    return i <= n ? v : -1;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
