// Pivot's status board: signs in (a token exchanged for a session cookie), follows the API's event
// stream, and renders the estate, the decisions waiting, the operations with their steps, and the
// drills. Plain DOM, no framework and nothing fetched from elsewhere; every value is set as text,
// never as HTML. A colour is never the only signal: each state also has a word and a symbol.

const $ = (id) => document.getElementById(id);

/** Builds an element: h('td', { class: 'x' }, 'text', child). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false || v === null) continue;
    if (k === 'class') el.className = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function duration(ms) {
  if (ms === undefined || ms === null || !Number.isFinite(ms)) return 'unknown';
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const m = s / 60;
  if (m < 10) return `${m.toFixed(1)} min`;
  if (m < 120) return `${Math.round(m)} min`;
  const hours = Math.round(s / 3600);
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} d`;
}

const ago = (iso) => (iso ? `${duration(Date.now() - Date.parse(iso))} ago` : '');
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

const STATE_SIGNS = {
  succeeded: '✓',
  running: '▶',
  pending: '○',
  failed: '✗',
  skipped: '↷',
};
const OUTCOME_CLASS = {
  running: 'info',
  'waiting-approval': 'warn',
  succeeded: 'ok',
  partial: 'warn',
  refused: 'warn',
  'rolled-back': 'warn',
  'needs-attention': 'bad',
  aborted: 'muted',
  failed: 'bad',
};

let session;
let stream;
let latest;

async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    credentials: 'same-origin',
    headers: {
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(session ? { 'x-csrf-token': session.csrf } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json = {};
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { message: text };
  }
  return { status: res.status, body: json };
}

// ---- sign-in ------------------------------------------------------------------------------------

function showSignIn(message) {
  stream?.close();
  stream = undefined;
  session = undefined;
  $('board').hidden = true;
  $('who').hidden = true;
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message ?? '';
  $('token').focus();
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value;
  $('token').value = '';
  const res = await api('POST', '/board/session', { token });
  if (res.status === 201) start(res.body);
  else showSignIn(res.body.message ?? `sign-in refused (${res.status})`);
}

async function signOut() {
  await api('DELETE', '/board/session');
  showSignIn('Signed out.');
}

function start(who) {
  session = who;
  $('sign-in').hidden = true;
  $('board').hidden = false;
  $('who').hidden = false;
  const rights = [who.may.approve ? 'may approve' : '', who.may.operate ? 'may operate' : '']
    .filter(Boolean)
    .join(', ');
  $('who-name').textContent =
    `${who.display ?? who.name} (${who.roles.join(', ')}${rights ? `; ${rights}` : '; view only'})`;
  $('status-line').textContent = 'Connecting…';
  stream = new EventSource('/v1/board/events');
  stream.addEventListener('state', (e) => render(JSON.parse(e.data)));
  stream.addEventListener('signed-out', () => showSignIn('The session ended: sign in again.'));
  stream.addEventListener('error', () => {
    if (stream?.readyState === EventSource.CLOSED) {
      void api('GET', '/board/session').then((res) => {
        if (res.status === 401) showSignIn('The session ended: sign in again.');
      });
    }
    $('status-line').textContent =
      `Connection lost: reconnecting… (last update ${clock(latest?.observedAt)})`;
  });
}

// ---- rendering ----------------------------------------------------------------------------------

/** Replaces a section's content only when its data changed, keeping keyboard focus where it was. */
const rendered = new Map();
function replace(id, data, build) {
  const json = JSON.stringify(data);
  if (rendered.get(id) === json) return;
  rendered.set(id, json);
  const host = $(id);
  const focused = host.contains(document.activeElement) ? document.activeElement?.dataset.key : undefined;
  host.replaceChildren(build());
  if (focused) host.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
}

function render(state) {
  latest = state;
  const apps = state.estate.apps;
  const past = apps.filter((a) => a.replicationLagMs !== null && !a.withinRpo).length;
  const running = state.operations.filter((o) => o.running).length + state.moreRunning;
  const waiting = state.operations.filter(waitsForApproval).length;
  $('status-line').textContent = [
    `${apps.length} applications`,
    `${past} past their RPO objective`,
    `${running} operations running`,
    `${waiting} waiting for approval`,
    `updated ${clock(state.observedAt)}`,
  ].join(' · ');
  renderApprovals(state.operations.filter(waitsForApproval));
  replace('estate', { apps, drills: state.drills }, () => estateTable(apps, state.drills));
  replace('operations', { ops: state.operations, more: state.moreRunning }, () =>
    operationsList(state.operations, state.moreRunning),
  );
  replace('drills', state.drills, () => drillsTable(state.drills));
}

function waitsForApproval(op) {
  if (!op.running || !op.report) return false;
  return op.report.waiting?.for === 'approval' || op.report.outcome === 'waiting-approval';
}

function titleOf(op) {
  const r = op.report;
  if (!r) return `${op.type} · ${op.workflowId}`;
  const what = r.app ?? (r.apps ? `site ${r.from}: ${r.apps.length} applications` : op.workflowId);
  return `${r.operation ?? op.type} · ${what} · ${r.from} → ${r.to}`;
}

function lagCell(a) {
  if (a.replicationLagMs === null) {
    return h('td', {}, h('span', { class: 'tag muted' }, '? unknown'), ' no replica sync reported');
  }
  const ratio = a.rpoObjectiveMs > 0 ? a.replicationLagMs / a.rpoObjectiveMs : 1;
  const within = a.withinRpo;
  return h(
    'td',
    {},
    h(
      'div',
      {
        class: `bar ${within ? 'ok' : 'bad'}`,
        role: 'img',
        'aria-label': `lag ${duration(a.replicationLagMs)}, ${Math.round(ratio * 100)}% of the ${duration(a.rpoObjectiveMs)} objective`,
      },
      h('span', { 'data-width': Math.min(100, Math.round(ratio * 100)) }),
    ),
    h('span', { class: `tag ${within ? 'ok' : 'bad'}` }, within ? '✓ within RPO' : '✗ past RPO'),
    ` ${duration(a.replicationLagMs)} of ${duration(a.rpoObjectiveMs)}`,
  );
}

/** What needs eyes first: no known active site, past the RPO, drift errors, an operation, the rest. */
function severity(a) {
  if (a.activeSite === null) return 0;
  if (a.replicationLagMs !== null && !a.withinRpo) return 1;
  if (a.drift.errors > 0 || a.fencedSites.length > 0) return 2;
  if (a.operationRunning) return 3;
  return 4;
}

function estateTable(unsorted, drills) {
  const apps = [...unsorted].sort((x, y) => severity(x) - severity(y) || x.app.localeCompare(y.app));
  const lastDrill = new Map();
  for (const d of drills) {
    const seen = lastDrill.get(d.app);
    if (!seen || Date.parse(d.startedAt) > Date.parse(seen.startedAt)) lastDrill.set(d.app, d);
  }
  const table = h(
    'table',
    { class: 'estate' },
    h('caption', { class: 'visually-hidden' }, 'Applications and where they run'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        [
          'Application',
          'Active site',
          'Epoch',
          'Replication lag against the RPO objective',
          'Fenced',
          'Drift',
          'Last drill',
          'Operation',
        ].map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      apps.map((a) => {
        const drill = lastDrill.get(a.app);
        const drift = a.drift.errors + a.drift.warnings;
        return h(
          'tr',
          { 'data-app': a.app },
          h('th', { scope: 'row' }, a.app),
          h('td', {}, a.activeSite ?? h('span', { class: 'tag bad' }, '✗ none known')),
          h('td', { class: 'num' }, a.epoch),
          lagCell(a),
          h(
            'td',
            {},
            a.fencedSites.length ? h('span', { class: 'tag warn' }, `⚠ ${a.fencedSites.join(', ')}`) : 'none',
          ),
          h(
            'td',
            {},
            drift === 0
              ? '✓ none'
              : h(
                  'span',
                  { class: `tag ${a.drift.errors ? 'bad' : 'warn'}` },
                  `${a.drift.errors} errors, ${a.drift.warnings} warnings`,
                ),
          ),
          h(
            'td',
            {},
            drill
              ? [
                  h(
                    'span',
                    { class: `tag ${drill.verdict === 'pass' ? 'ok' : 'bad'}` },
                    drill.verdict === 'pass' ? '✓ pass' : '✗ fail',
                  ),
                  ` ${ago(drill.endedAt ?? drill.startedAt)}`,
                ]
              : 'never',
          ),
          h('td', {}, a.operationRunning ? h('span', { class: 'tag info' }, `▶ ${a.operationRunning}`) : '—'),
        );
      }),
    ),
  );
  // Widths set through the DOM (the policy admits no inline style attribute).
  for (const span of table.querySelectorAll('.bar > span')) span.style.width = `${span.dataset.width}%`;
  return table;
}

function stepsList(report) {
  return h(
    'ol',
    { class: 'steps' },
    (report.steps ?? []).flatMap((s) => [
      s.pointOfNoReturn
        ? h(
            'li',
            { class: 'ponr' },
            h('strong', {}, '▼ Point of no return'),
            report.pointOfNoReturnPassed
              ? ' (passed): from here on Pivot never rolls back'
              : ': from here on Pivot never rolls back',
          )
        : null,
      h(
        'li',
        { class: `step ${s.state}`, 'data-step': s.id },
        h('span', { class: 'sign', 'aria-hidden': 'true' }, STATE_SIGNS[s.state] ?? '·'),
        h('span', { class: 'state' }, s.state),
        ' ',
        h('span', { class: 'title' }, s.title),
        h('span', { class: 'site' }, ` on ${s.site}`),
        s.durationMs !== undefined
          ? h('span', { class: 'dur' }, ` ${(s.durationMs / 1000).toFixed(1)} s`)
          : null,
        s.error ? h('div', { class: 'step-error' }, s.error) : null,
      ),
    ]),
  );
}

function outcomeTag(op) {
  const outcome = op.report?.outcome ?? (op.running ? 'running' : 'unknown');
  return h('span', { class: `tag ${OUTCOME_CLASS[outcome] ?? 'muted'}` }, outcome);
}

function operationCard(op) {
  const r = op.report;
  return h(
    'article',
    { class: `card op ${op.running ? 'running' : 'closed'}`, 'data-workflow': op.workflowId },
    h('h3', {}, titleOf(op), ' ', outcomeTag(op)),
    h(
      'p',
      { class: 'meta' },
      r ? `Asked by ${r.requestedBy}${r.trigger ? ` (${r.trigger})` : ''}: “${r.reason}”. ` : '',
      `Started ${clock(op.startedAt)}`,
      op.closedAt ? `, ended ${clock(op.closedAt)}` : '',
      r?.rtoMs !== undefined ? `; RTO ${(r.rtoMs / 1000).toFixed(1)} s` : '',
      r?.rpo ? `; data-loss window ${duration(r.rpo.windowMs)}` : '',
      '. ',
      op.temporalUrl
        ? h(
            'a',
            {
              href: op.temporalUrl,
              target: '_blank',
              rel: 'noopener noreferrer',
              'data-key': `t:${op.workflowId}:${op.runId}`,
            },
            'Workflow in Temporal',
          )
        : null,
    ),
    op.unreadable ? h('p', { class: 'error' }, `Its progress could not be read: ${op.unreadable}`) : null,
    r?.waiting
      ? h('p', { class: 'waiting' }, h('strong', {}, `⏸ Waiting for ${r.waiting.for}: `), r.waiting.detail)
      : null,
    r?.error ? h('p', { class: 'error' }, `✗ ${r.error}`) : null,
    r?.suggestion ? h('p', {}, h('strong', {}, 'Next: '), r.suggestion) : null,
    // A closed operation shows its steps on demand; a running one always.
    r?.steps
      ? op.running
        ? stepsList(r)
        : h(
            'details',
            {},
            h('summary', { 'data-key': `s:${op.workflowId}:${op.runId}` }, `Steps (${r.steps.length})`),
            stepsList(r),
          )
      : null,
    r?.apps ? siteApps(r, op) : null,
  );
}

/** A site operation's applications: counted by outcome, those that did not succeed named, all on demand. */
function siteApps(r, op) {
  const counts = {};
  for (const a of r.apps) counts[a.outcome] = (counts[a.outcome] ?? 0) + 1;
  const table = (apps) =>
    h(
      'table',
      { class: 'site-apps' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Wave', 'Application', 'Outcome', 'Error'].map((t) => h('th', { scope: 'col' }, t)),
        ),
      ),
      h(
        'tbody',
        {},
        apps.map((a) =>
          h(
            'tr',
            {},
            h('td', { class: 'num' }, a.wave),
            h('th', { scope: 'row' }, a.app),
            h('td', {}, a.outcome),
            h('td', {}, a.error ?? ''),
          ),
        ),
      ),
    );
  const unwell = r.apps.filter((a) => !['succeeded', 'running', 'pending'].includes(a.outcome));
  return h(
    'div',
    {},
    h(
      'p',
      {},
      `${r.apps.length} applications in ${r.waves.length} waves: `,
      Object.entries(counts)
        .map(([outcome, n]) => `${n} ${outcome}`)
        .join(', '),
    ),
    unwell.length ? table(unwell) : null,
    h(
      'details',
      {},
      h('summary', { 'data-key': `a:${op.workflowId}:${op.runId}` }, 'Every application'),
      h('div', { class: 'scroll' }, table(r.apps)),
    ),
  );
}

function operationsList(ops, more) {
  if (ops.length === 0) return h('p', { class: 'muted' }, 'No operation in the last 24 hours.');
  const running = ops.filter((o) => o.running);
  const closed = ops.filter((o) => !o.running);
  return h(
    'div',
    {},
    running.length ? h('h3', { class: 'group' }, `Running (${running.length + more})`) : null,
    running.map(operationCard),
    more ? h('p', { class: 'muted' }, `${more} more running operations are not shown one by one.`) : null,
    closed.length ? h('h3', { class: 'group' }, 'Recent') : null,
    closed.map(operationCard),
  );
}

function drillsTable(drills) {
  if (drills.length === 0) return h('p', { class: 'muted' }, 'No drill evidence is kept.');
  return h(
    'table',
    {},
    h('caption', { class: 'visually-hidden' }, 'Drills and their evidence'),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Application', 'Site', 'Verdict', 'RTO', 'Data-loss window', 'When', 'Evidence'].map((t) =>
          h('th', { scope: 'col' }, t),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      drills.map((d) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, d.app),
          h('td', {}, d.site),
          h(
            'td',
            {},
            h(
              'span',
              { class: `tag ${d.verdict === 'pass' ? 'ok' : 'bad'}` },
              d.verdict === 'pass' ? '✓ pass' : '✗ fail',
            ),
            d.reasons.length ? ` ${d.reasons.join('; ')}` : '',
          ),
          h(
            'td',
            {},
            d.achieved.rtoMs !== undefined
              ? `${duration(d.achieved.rtoMs)} of ${duration(d.objectives.rtoMs)}`
              : 'not measured',
          ),
          h(
            'td',
            {},
            d.achieved.rpoMs !== undefined
              ? `${duration(d.achieved.rpoMs)} of ${duration(d.objectives.rpoMs)}`
              : 'not measured',
          ),
          h('td', {}, ago(d.endedAt ?? d.startedAt)),
          h(
            'td',
            {},
            h(
              'a',
              {
                href: `/v1/drills/${encodeURIComponent(d.id)}/report.html`,
                target: '_blank',
                rel: 'noopener',
                'data-key': `d:${d.id}`,
              },
              'Evidence',
            ),
          ),
        ),
      ),
    ),
  );
}

// ---- decisions ----------------------------------------------------------------------------------

/** The approval cards are kept across updates (a half-typed reason must survive a refresh). */
const cards = new Map();

function renderApprovals(ops) {
  const host = $('approvals');
  const keys = new Set(ops.map((o) => `${o.workflowId}/${o.runId}`));
  for (const [key, card] of cards) {
    if (!keys.has(key)) {
      card.el.remove();
      cards.delete(key);
    }
  }
  for (const op of ops) {
    const key = `${op.workflowId}/${op.runId}`;
    if (!cards.has(key)) {
      const card = approvalCard(op);
      cards.set(key, card);
      host.append(card.el);
    }
    cards.get(key).update(op);
  }
  if (ops.length === 0 && !host.querySelector('.none')) {
    host.append(h('p', { class: 'muted none' }, 'Nothing waits for a decision.'));
  } else if (ops.length > 0) {
    host.querySelector('.none')?.remove();
  }
}

function expectedLossMs(loss) {
  return loss?.lastSyncTime ? Math.max(0, Date.now() - Date.parse(loss.lastSyncTime)) : Infinity;
}

function approvalCard(op) {
  const id = op.workflowId.replace(/[^A-Za-z0-9_-]/g, '_');
  const lossText = h('p', { class: 'loss' });
  const detail = h('p', { class: 'detail' });
  const cuts = h('div', {});
  const result = h('p', { class: 'result', role: 'status', 'aria-live': 'polite' });
  const reason = h('textarea', {
    id: `reason-${id}`,
    name: 'reason',
    required: true,
    rows: 2,
    'data-key': `r:${op.workflowId}`,
  });
  const accept = h('input', {
    id: `accept-${id}`,
    name: 'acceptDataLoss',
    type: 'text',
    spellcheck: 'false',
    'data-key': `a:${op.workflowId}`,
  });
  const acceptRow = h(
    'p',
    { class: 'accept', hidden: true },
    h('label', { for: `accept-${id}` }, 'Data loss I accept (e.g. 5m, or unbounded)'),
    accept,
  );
  const act = async (action) => {
    if (!reason.value.trim()) {
      result.textContent = 'Say why: the reason is recorded.';
      reason.focus();
      return;
    }
    const body = {
      reason: reason.value.trim(),
      ...(action === 'approve' && !acceptRow.hidden ? { acceptDataLoss: accept.value.trim() } : {}),
    };
    result.textContent = `${action === 'approve' ? 'Approving' : 'Aborting'}…`;
    const res = await api('POST', `/v1/operations/${encodeURIComponent(op.workflowId)}/${action}`, body);
    result.textContent =
      res.status === 200
        ? `${action === 'approve' ? 'Approved' : 'Abort sent'}.`
        : `Refused (${res.status}): ${res.body.message ?? ''}`;
  };
  const buttons = [];
  if (session?.may.approve)
    buttons.push(
      h(
        'button',
        {
          type: 'button',
          class: 'approve',
          onclick: () => void act('approve'),
          'data-key': `ap:${op.workflowId}`,
        },
        'Approve',
      ),
    );
  if (session?.may.operate)
    buttons.push(
      h(
        'button',
        {
          type: 'button',
          class: 'abort',
          onclick: () => void act('abort'),
          'data-key': `ab:${op.workflowId}`,
        },
        'Abort',
      ),
    );
  const el = h(
    'article',
    { class: 'card approval', 'data-workflow': op.workflowId, 'aria-labelledby': `ap-title-${id}` },
    h('h3', { id: `ap-title-${id}` }, `⏸ ${titleOf(op)}`),
    h('p', { class: 'meta' }, op.report ? `Asked by ${op.report.requestedBy}: “${op.report.reason}”` : ''),
    lossText,
    cuts,
    detail,
    buttons.length
      ? h(
          'form',
          { class: 'decide', onsubmit: (e) => e.preventDefault() },
          h('label', { for: `reason-${id}` }, 'Reason (recorded with your decision)'),
          reason,
          acceptRow,
          h('div', { class: 'buttons' }, buttons),
          result,
        )
      : h(
          'p',
          { class: 'muted view-only' },
          `Signed in as ${session?.display ?? session?.name} (${session?.roles.join(', ')}): you may see this decision, not take it.`,
        ),
    h(
      'details',
      {},
      h('summary', {}, 'The plan'),
      op.report?.steps
        ? stepsList(op.report)
        : h('p', {}, 'A site operation: its applications follow their own plans.'),
    ),
  );
  let prefilled = false;
  const update = (fresh) => {
    if (fresh) op = fresh;
    const loss = op.report?.waiting?.loss;
    if (loss) {
      const ms = expectedLossMs(loss);
      const over = ms > loss.objectiveMs;
      lossText.replaceChildren(
        h('strong', {}, 'Expected data loss: '),
        Number.isFinite(ms)
          ? `${duration(ms)} and growing until writes stop`
          : 'unknown (no replica sync is reported): unbounded',
        ` (RPO objective ${duration(loss.objectiveMs)}) `,
        h(
          'span',
          { class: `tag ${over ? 'bad' : 'ok'}` },
          over ? '✗ beyond the objective' : '✓ within the objective',
        ),
      );
      acceptRow.hidden = !loss.mustAccept;
      if (loss.mustAccept && !prefilled) {
        accept.value = Number.isFinite(ms) ? `${Math.ceil(ms / 60_000) + 1}m` : 'unbounded';
        prefilled = true;
      }
    } else {
      lossText.replaceChildren(
        op.report?.mode === 'planned' ? 'A planned operation: no data loss is expected.' : '',
      );
    }
    const cut = op.report?.waiting?.cutsOff ?? [];
    cuts.replaceChildren(
      cut.length
        ? h(
            'p',
            { class: 'warn-text' },
            h('strong', {}, '⚠ The storage fence also cuts off: '),
            cut.join(', '),
          )
        : '',
    );
    detail.textContent = op.report?.waiting?.detail ?? '';
  };
  return { el, update };
}

// The expected loss grows while the decision waits: refresh it every second.
setInterval(() => {
  for (const card of cards.values()) card.update();
}, 1000);

// ---- start --------------------------------------------------------------------------------------

$('sign-in-form').addEventListener('submit', (e) => void signIn(e));
$('sign-out').addEventListener('click', () => void signOut());
void api('GET', '/board/session').then((res) => (res.status === 200 ? start(res.body) : showSignIn()));
