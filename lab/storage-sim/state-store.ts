/**
 * Keeps the simulator's state on disk so that it survives a restart: written atomically (temp file
 * then rename) so that a crash mid-write leaves the previous state, never a torn file.
 */
import { existsSync, readFileSync, renameSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SimState } from './model.ts';

export class StateStore {
  private lastWritten = '';

  constructor(private readonly path: string) {}

  load(): SimState | undefined {
    if (!existsSync(this.path)) return undefined;
    const state = JSON.parse(readFileSync(this.path, 'utf8')) as SimState;
    if (state.version !== 1)
      throw new Error(`${this.path}: unsupported simulator state version ${String(state.version)}`);
    return state;
  }

  save(state: SimState): void {
    const text = JSON.stringify(state);
    if (text === this.lastWritten) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.path);
    this.lastWritten = text;
  }
}
