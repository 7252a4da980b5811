/**
 * The pause between two polls of a waiting activity. It heartbeats (so the workflow sees progress
 * and can deliver a cancellation), and ends with a CancelledFailure as soon as the workflow cancels
 * the activity: an aborted operation's poll stops instead of running on until its timeout.
 * Outside an activity (the site guard, tests) it is a plain sleep.
 */
import { asyncLocalStorage } from '@temporalio/activity';
import { sleep } from '../common/wait.ts';

export async function pollPause(ms: number, progress?: unknown): Promise<void> {
  const activity = asyncLocalStorage.getStore();
  if (!activity) return sleep(ms);
  activity.heartbeat(progress);
  await activity.sleep(ms);
}
