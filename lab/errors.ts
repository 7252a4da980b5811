/** Errors of the lab commands: each names the part, its log file and what to do next. */

export class LabError extends Error {
  constructor(
    message: string,
    readonly part: string,
    readonly hint: string,
    readonly logFile?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'LabError';
  }

  /** The text an operator reads: what failed, where to look, what to do. */
  describe(): string {
    return [
      `${this.part}: ${this.message}`,
      ...(this.logFile ? [`  log: ${this.logFile}`] : []),
      `  next: ${this.hint}`,
    ].join('\n');
  }
}

export function isLabError(err: unknown): err is LabError {
  return err instanceof LabError;
}
