/**
 * Drill schedules as Temporal Schedules (docs/adr/0004-drills.md): each fires the `scheduledDrill`
 * workflow, which plans the drills at that moment. Cron with a time zone or a fixed interval,
 * jitter, blackout windows (the schedule's skip calendars), pause and resume with a note, overlap
 * SKIP (a firing while the previous one runs is skipped), and the next runs.
 */
import {
  ScheduleNotFoundError,
  ScheduleOverlapPolicy,
  type CalendarSpec,
  type Client,
  type ScheduleDescription,
} from '@temporalio/client';
import { CONTROL_TASK_QUEUE } from '../common/task-queues.ts';
import type { ScheduledDrillInput } from '../workflows/drill.ts';

const PREFIX = 'pivot-drill-schedule:';
const DAYS = ['SUNDAY', 'MONDAY', 'TUESDAY', 'WEDNESDAY', 'THURSDAY', 'FRIDAY', 'SATURDAY'] as const;
type Day = (typeof DAYS)[number];

/** A window in which the schedule never fires, e.g. weekends, or 08:00-18:59 on weekdays. */
export interface Blackout {
  daysOfWeek?: Day[];
  /** Inclusive hours, 0-23, in the schedule's time zone. */
  hours?: { start: number; end: number };
  comment?: string;
}

export interface DrillScheduleSpec {
  name: string;
  apps?: string[];
  site?: string;
  /** Exactly one of cron (5 fields) or every (a duration such as "30s", "6h"). */
  cron?: string;
  every?: string;
  timezone?: string;
  jitter?: string;
  blackouts?: Blackout[];
  reason: string;
}

/** A schedule as asked for (without its reason, which is in the note), and how it stands. */
export interface DrillScheduleView extends Omit<DrillScheduleSpec, 'blackouts' | 'reason'> {
  blackouts: Blackout[];
  paused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: Array<{ scheduledAt: string; startedAt: string; workflowId: string }>;
  running: string[];
  skippedOverlap: number;
}

export class ScheduleInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScheduleInputError';
  }
}

export class NoSuchScheduleError extends Error {
  constructor(name: string) {
    super(`no drill schedule ${name}`);
    this.name = 'NoSuchScheduleError';
  }
}

export function validateSchedule(spec: DrillScheduleSpec): void {
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(spec.name)) {
    throw new ScheduleInputError('name: lowercase letters, digits and dashes (at most 63)');
  }
  if (!spec.cron === !spec.every) throw new ScheduleInputError('give exactly one of cron or every');
  if (spec.cron && spec.cron.trim().split(/\s+/).length !== 5) {
    throw new ScheduleInputError('cron: five fields (minute hour day-of-month month day-of-week)');
  }
  if (!spec.apps?.length === !spec.site)
    throw new ScheduleInputError('name applications or a site, not both');
  for (const b of spec.blackouts ?? []) {
    if (b.daysOfWeek?.some((d) => !DAYS.includes(d))) {
      throw new ScheduleInputError(`blackouts: days are ${DAYS.join(', ')}`);
    }
    if (b.hours && !(b.hours.start >= 0 && b.hours.end <= 23 && b.hours.start <= b.hours.end)) {
      throw new ScheduleInputError('blackouts: hours from 0 to 23, start <= end');
    }
    if (!b.daysOfWeek?.length && !b.hours)
      throw new ScheduleInputError('blackouts: give days, hours, or both');
  }
}

const skipOf = (b: Blackout): CalendarSpec => ({
  second: { start: 0, end: 59 },
  minute: { start: 0, end: 59 },
  hour: b.hours ? { start: b.hours.start, end: b.hours.end } : { start: 0, end: 23 },
  dayOfWeek: b.daysOfWeek?.length ? b.daysOfWeek : '*',
  ...(b.comment ? { comment: b.comment } : {}),
});

export async function createDrillSchedule(
  client: Client,
  spec: DrillScheduleSpec,
  by: string,
): Promise<void> {
  validateSchedule(spec);
  const args: ScheduledDrillInput = {
    schedule: spec.name,
    ...(spec.apps?.length ? { apps: spec.apps } : {}),
    ...(spec.site ? { site: spec.site } : {}),
    reason: spec.reason,
  };
  try {
    await client.schedule.create({
      scheduleId: `${PREFIX}${spec.name}`,
      spec: {
        ...(spec.cron ? { cronExpressions: [spec.cron] } : {}),
        ...(spec.every ? { intervals: [{ every: spec.every as `${number}s` }] } : {}),
        ...(spec.timezone ? { timezone: spec.timezone } : {}),
        ...(spec.jitter ? { jitter: spec.jitter as `${number}s` } : {}),
        ...(spec.blackouts?.length ? { skip: spec.blackouts.map(skipOf) } : {}),
      },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledDrill',
        workflowId: `pivot-scheduled-drill:${spec.name}`,
        taskQueue: CONTROL_TASK_QUEUE,
        args: [args],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '10 minutes' },
      // The schedule as it was asked for (Temporal describes cron as calendars).
      memo: { pivot: spec },
      state: { note: `created by ${by}: ${spec.reason}` },
    });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    if (/already (exists|running)/i.test(text))
      throw new ScheduleInputError(`a drill schedule ${spec.name} exists`);
    if (/invalid|parse|unknown time zone|timezone/i.test(text)) throw new ScheduleInputError(text);
    throw err;
  }
}

function view(name: string, d: ScheduleDescription): DrillScheduleView {
  const { reason: _reason, blackouts, ...asked } = (d.memo?.['pivot'] ?? {}) as Partial<DrillScheduleSpec>;
  void _reason;
  return {
    ...asked,
    name,
    blackouts: blackouts ?? [],
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    recentRuns: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      startedAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
    })),
    running: d.info.runningActions.map((a) => a.workflow.workflowId),
    skippedOverlap: d.info.numActionsSkippedOverlap,
  };
}

async function described(client: Client, name: string): Promise<ScheduleDescription> {
  try {
    return await client.schedule.getHandle(`${PREFIX}${name}`).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new NoSuchScheduleError(name);
    throw err;
  }
}

export async function describeDrillSchedule(client: Client, name: string): Promise<DrillScheduleView> {
  return view(name, await described(client, name));
}

export async function listDrillSchedules(client: Client): Promise<DrillScheduleView[]> {
  const names: string[] = [];
  for await (const s of client.schedule.list()) {
    if (s.scheduleId.startsWith(PREFIX)) names.push(s.scheduleId.slice(PREFIX.length));
  }
  return Promise.all(names.sort().map((n) => describeDrillSchedule(client, n)));
}

export async function setDrillSchedulePaused(
  client: Client,
  name: string,
  paused: boolean,
  note: string,
): Promise<DrillScheduleView> {
  await described(client, name);
  const handle = client.schedule.getHandle(`${PREFIX}${name}`);
  if (paused) await handle.pause(note);
  else await handle.unpause(note);
  return describeDrillSchedule(client, name);
}

export async function deleteDrillSchedule(client: Client, name: string): Promise<void> {
  await described(client, name);
  await client.schedule.getHandle(`${PREFIX}${name}`).delete();
}
