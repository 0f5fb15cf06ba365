/** Memory figures of a process from `/proc/<pid>/status` (Linux). */
import { readFileSync } from 'node:fs';

/** A `/proc/<pid>/status` memory field in MB (`VmHWM` = peak RSS, `RssAnon`, `RssFile`). */
export function memoryMb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
  return match === null ? NaN : Number(match[1]) / 1024;
}

export const peakRssMb = (pid: number) => memoryMb(pid, 'VmHWM');
