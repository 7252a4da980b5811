/**
 * The lab's long-running parts (Temporal, Redis, the storage simulator) as detached processes that
 * outlive the `pivot lab` command: each has a pid file under run/ and a log file under logs/, and
 * is stopped as a whole process group so that nothing it spawned is left behind.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { sleep } from '../common/wait.ts';

export interface DaemonSpec {
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export class Daemons {
  constructor(
    private readonly runDir: string,
    private readonly logDir: string,
  ) {}

  logFile(name: string): string {
    return join(this.logDir, `${name}.log`);
  }

  private pidFile(name: string): string {
    return join(this.runDir, `${name}.pid`);
  }

  pid(name: string): number | undefined {
    const file = this.pidFile(name);
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  isRunning(name: string): boolean {
    const pid = this.pid(name);
    return pid !== undefined && isAlive(pid);
  }

  start(spec: DaemonSpec): number {
    mkdirSync(this.runDir, { recursive: true });
    mkdirSync(this.logDir, { recursive: true });
    const fd = openSync(this.logFile(spec.name), 'a');
    const child = spawn(spec.command, spec.args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...spec.env },
      cwd: spec.cwd,
    });
    closeSync(fd);
    if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.command})`);
    child.unref();
    writeFileSync(this.pidFile(spec.name), String(child.pid));
    return child.pid;
  }

  /** SIGKILL to the process group at once, as a crash: nothing is flushed, nothing is said. */
  async crash(name: string): Promise<void> {
    const pid = this.pid(name);
    if (pid === undefined) return;
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    while (isAlive(pid)) await sleep(50);
    rmSync(this.pidFile(name), { force: true });
  }

  /** SIGTERM to the process group, SIGKILL after `graceMs`. Idempotent. */
  async stop(name: string, graceMs = 10_000): Promise<void> {
    const pid = this.pid(name);
    if (pid !== undefined) await killGroup(pid, graceMs);
    rmSync(this.pidFile(name), { force: true });
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch {
    return false;
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export async function killGroup(pid: number, graceMs: number): Promise<void> {
  const signal = (sig: NodeJS.Signals): void => {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, sig);
      } catch {
        // already gone
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await sleep(50);
}

/** True when something accepts TCP connections on host:port. */
export function isPortOpen(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
