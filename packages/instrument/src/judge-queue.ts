import { diag } from '@opentelemetry/api';

/**
 * The judge's work queue: at most `size` jobs waiting and `concurrency` running. Jobs start on a
 * later turn of the event loop (`setImmediate`), never on the response path of the call that
 * offered them; a job that fails is logged and costs only its own result.
 */
export class JudgeQueue<Job> {
  private readonly waiting: Job[] = [];
  private runningCount = 0;
  private pumpScheduled = false;
  private idleWaiters: (() => void)[] = [];
  private readonly size: number;
  private readonly concurrency: number;
  private readonly work: (job: Job) => Promise<void>;

  constructor(size: number, concurrency: number, work: (job: Job) => Promise<void>) {
    this.size = size;
    this.concurrency = concurrency;
    this.work = work;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get running(): number {
    return this.runningCount;
  }

  /** Queues `job`; false (and nothing queued) when the queue is full. */
  offer(job: Job): boolean {
    if (this.waiting.length >= this.size) return false;
    this.waiting.push(job);
    this.schedule();
    return true;
  }

  /** Resolves when nothing is queued or running. */
  idle(): Promise<void> {
    return this.waiting.length === 0 && this.runningCount === 0 && !this.pumpScheduled
      ? Promise.resolve()
      : new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    // Never on the response path: the app's continuation (a microtask) runs first.
    setImmediate(() => this.pump());
  }

  private pump(): void {
    this.pumpScheduled = false;
    while (this.runningCount < this.concurrency && this.waiting.length > 0) {
      const job = this.waiting.shift() as Job;
      this.runningCount += 1;
      this.work(job)
        .catch((error: unknown) => diag.error('modelmaxx: judging a call failed', error))
        .finally(() => {
          this.runningCount -= 1;
          if (this.waiting.length > 0) this.schedule();
          else this.settleIdle();
        });
    }
    this.settleIdle();
  }

  private settleIdle(): void {
    if (this.waiting.length > 0 || this.runningCount > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
