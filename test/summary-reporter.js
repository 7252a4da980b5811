// Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader can parse;
// when the run included the chaos suite, its own count follows as the last line (docs/reliability.md).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const CHAOS_REPORT = fileURLToPath(import.meta.resolve('../artifacts/chaos/chaos-report.json'));

class SummaryReporter {
  onRunStart() {
    this.startedAt = Date.now();
  }

  onRunComplete(_contexts, results) {
    process.stdout.write(
      `\n${results.numPassedTests} passed, ${results.numFailedTests} failed, ${results.numPendingTests} skipped\n`,
    );
    if (existsSync(CHAOS_REPORT) && statSync(CHAOS_REPORT).mtimeMs >= this.startedAt) {
      const { summary } = JSON.parse(readFileSync(CHAOS_REPORT, 'utf8'));
      process.stdout.write(`${summary}\n`);
    }
  }
}
export default SummaryReporter;
