// The sessiongate admin page: plain JavaScript over the admin REST API. The admin session is
// an HttpOnly cookie set by POST /login; nothing is kept in localStorage. Every change sends
// X-Requested-With, which the listener requires of cookie-authenticated changes.
'use strict';

(() => {
  const REFRESH_MS = 3000;
  const LIMIT = 500;
  const $ = (id) => document.getElementById(id);
  let timer;
  let selected = null; // the session shown in the detail panel
  let skewMs = 0; // server clock minus ours, when they disagree by more than a few seconds
  let shownRecordings = ''; // the recording list on show (JSON), so a refresh leaves it alone
  const table = window.sgTable;

  class Unauthorized extends Error {}

  async function api(method, path, body) {
    const headers = { 'x-requested-with': 'sessiongate-admin' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const date = Date.parse(res.headers.get('date') || '');
    if (!Number.isNaN(date)) {
      const diff = date - Date.now();
      skewMs = Math.abs(diff) > 5000 ? diff : 0;
    }
    if (res.status === 401 && path !== '/login') {
      showLogin('Your admin session ended; log in again.');
      throw new Unauthorized();
    }
    if (!res.ok) {
      let message = res.statusText;
      try {
        message = (await res.json()).error.message;
      } catch {
        // not JSON
      }
      const err = new Error(message);
      err.status = res.status;
      throw err;
    }
    return res.status === 204 ? null : res.json();
  }

  function say(text) {
    $('status').textContent = text;
  }

  function duration(ms) {
    const total = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(total / 86400);
    const h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    if (d > 0) return `${d}d ${h}h`;
    if (h > 0) return `${h}h ${m}m`;
    if (m > 0) return `${m}m ${s}s`;
    return `${s}s`;
  }

  const now = () => Date.now() + skewMs;
  // The deadline that will end the session (the first of idle, lifetime, access policy).
  const ENDED_BY = { idle_timeout: 'idle', lifetime_expired: 'lifetime', policy_timeout: 'access policy' };
  const endsIn = (s) =>
    s.expires_at
      ? `${duration(Date.parse(s.expires_at) - now())} (${ENDED_BY[s.expiry_reason] ?? s.expiry_reason})`
      : 'never';
  const idleLeft = (s) =>
    s.idle_timeout > 0
      ? duration(Date.parse(s.last_access_at) + s.idle_timeout * 1000 - now())
      : 'no idle timeout';
  const lifetimeLeft = (s) =>
    s.lifetime_expires_at ? duration(Date.parse(s.lifetime_expires_at) - now()) : 'no lifetime limit';

  function cell(row, text) {
    const td = document.createElement('td');
    td.textContent = text;
    row.append(td);
    return td;
  }

  function button(label, onClick, className) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    if (className) b.className = className;
    b.addEventListener('click', onClick);
    return b;
  }

  function who(s) {
    return `${s.user ?? '(no user)'} from ${s.client_ip ?? 'an unknown address'}`;
  }

  function filterQuery() {
    const q = new URLSearchParams({ limit: String(LIMIT) });
    const user = $('f-user').value.trim();
    const state = $('f-state').value;
    const ip = $('f-ip').value.trim();
    if (user) q.set('user', user);
    if (state) q.set('state', state);
    if (ip) q.set('client_ip', ip);
    return q;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const [page, stats] = await Promise.all([
        api('GET', `/api/v1/sessions?${filterQuery()}`),
        api('GET', '/api/v1/stats'),
      ]);
      renderCounts(stats);
      renderTable(page);
      if (selected) await showDetail(selected.id, false);
    } catch (err) {
      if (err instanceof Unauthorized) return;
      say(`Could not refresh: ${err.message}`);
    }
    timer = setTimeout(refresh, REFRESH_MS);
  }

  function renderCounts(stats) {
    const byState = stats.sessions.by_state;
    for (const el of document.querySelectorAll('[data-count]')) {
      const key = el.dataset.count;
      el.textContent = String(key === 'total' ? stats.sessions.active : (byState[key] ?? 0));
    }
    renderPipeline(stats.close_pipeline.subscribers ?? {});
  }

  // A close subscriber that lags (a plugin's session_ended hangs or fails) is named on its own.
  function renderPipeline(subscribers) {
    const lagging = Object.entries(subscribers).filter(([, lag]) => lag.behind || lag.stuck);
    const line = $('pipeline');
    line.hidden = lagging.length === 0;
    line.textContent = lagging.length
      ? `Close pipeline behind: ${lagging
          .map(
            ([name, lag]) =>
              `${name} ${duration(lag.oldest_age_seconds * 1000)} behind, ${lag.pending} pending` +
              (lag.stuck ? ', not progressing' : ''),
          )
          .join('; ')}`
      : '';
  }

  // The rows in the chosen order, logons in progress hidden unless asked for (sessions-table.js).
  const sessionTable = table.sessionTable({
    table: $('sessions'),
    note: $('inprogress-note'),
    count: $('inprogress-count'),
    toggle: $('inprogress-toggle'),
    stateFilter: $('f-state'),
    row: (s) => sessionRow(s),
  });

  function renderTable(page) {
    sessionTable.render(page.sessions);
    $('more').hidden = page.next_cursor === null;
  }

  function sessionRow(s) {
    const tr = document.createElement('tr');
    tr.dataset.id = s.id;
    if (selected && selected.id === s.id) tr.className = 'selected';
    cell(tr, table.shortId(s.id)).title = s.id;
    cell(tr, s.user ?? '—');
    cell(tr, s.client_ip ?? '—');
    cell(tr, s.protocol ?? '—');
    const agent = cell(tr, s.user_agent ?? '—');
    agent.className = 'agent';
    if (s.user_agent) agent.title = s.user_agent;
    cell(tr, s.state);
    cell(tr, '').append(table.timeElement(s.created_at));
    cell(tr, endsIn(s));
    const actions = cell(tr, '');
    const details = button('Details', () =>
      showDetail(s.id, true).catch((err) => say(`Could not open the session: ${err.message}`)),
    );
    details.setAttribute('aria-label', `Details of the session of ${who(s)}`);
    const kill = button('Kill', () => killOne(s), 'danger');
    kill.setAttribute('aria-label', `Kill the session of ${who(s)}`);
    actions.append(details, ' ', kill);
    return tr;
  }

  async function showDetail(id, focus) {
    let s;
    try {
      s = await api('GET', `/api/v1/sessions/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof Unauthorized) return;
      if (err.status === 404) {
        hideDetail();
        say('That session has ended.');
        return;
      }
      throw err;
    }
    selected = s;
    for (const tr of $('sessions').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.id === s.id);
    $('detail-title').textContent = `Session of ${who(s)}`;
    const fields = [
      ['Id', s.id],
      ['User', s.user ?? '—'],
      ['Client address', s.client_ip ?? '—'],
      ['Protocol', s.protocol ?? '—'],
      ['User agent', s.user_agent ?? '—'],
      ['State', s.state],
      ['Created', table.timeElement(s.created_at)],
      ['Last access', table.timeElement(s.last_access_at)],
      ['Ends in', endsIn(s)],
      ['Expires', s.expires_at ? table.timeElement(s.expires_at) : 'never'],
      ['Idle timeout', `${s.idle_timeout} s (${idleLeft(s)} left)`],
      ['Lifetime', `${s.lifetime} s (${lifetimeLeft(s)} left)`],
    ];
    if (s.policy_expires_at) {
      fields.push(['Access policy timeout', `${duration(Date.parse(s.policy_expires_at) - now())} left`]);
    }
    const dl = $('detail-fields');
    dl.replaceChildren(
      ...fields.flatMap(([k, v]) => {
        const dt = document.createElement('dt');
        dt.textContent = k;
        const dd = document.createElement('dd');
        dd.append(v); // text, or a <time>
        return [dt, dd];
      }),
    );
    $('detail-plugins').textContent = s.plugins.length ? s.plugins.join(', ') : 'none';
    const rows = Object.entries(s.variables).map(([name, value]) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = name;
      tr.append(th);
      cell(tr, value);
      return tr;
    });
    $('variables').tBodies[0].replaceChildren(...rows);
    $('kill-user').hidden = !s.user;
    $('detail').hidden = false;
    if (focus) $('detail-title').focus();
    await showRecordings(s.id);
  }

  function size(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
    return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  }

  // SSH sessions may have terminal recordings (asciicast files): a download link for each.
  // Re-rendered only when the list changed, so a focused link survives the refresh.
  async function showRecordings(id) {
    // Another session's list stays hidden until this one's arrives.
    if (!shownRecordings.startsWith(JSON.stringify([id]).slice(0, -1))) $('detail-recordings').hidden = true;
    let list;
    try {
      list = (await api('GET', `/api/v1/sessions/${encodeURIComponent(id)}/recordings`)).recordings;
    } catch {
      return; // the next refresh tries again (a 401 has shown the login already)
    }
    const key = JSON.stringify([id, list]);
    if (key === shownRecordings) return;
    shownRecordings = key;
    const items = list.map((r) => {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = r.url;
      a.download = `${id}-${r.channel}.cast`;
      a.textContent = `Channel ${r.channel} (${size(r.bytes)})`;
      li.append(a);
      return li;
    });
    $('recordings').replaceChildren(...items);
    $('detail-recordings').hidden = items.length === 0;
  }

  function hideDetail() {
    selected = null;
    shownRecordings = '';
    $('detail').hidden = true;
    for (const tr of $('sessions').tBodies[0].rows) tr.classList.remove('selected');
  }

  async function killOne(s) {
    if (!window.confirm(`Kill the session of ${who(s)}? The user will have to log on again.`)) return;
    try {
      await api('DELETE', `/api/v1/sessions/${encodeURIComponent(s.id)}`);
      say(`Killed the session of ${who(s)}.`);
      if (selected && selected.id === s.id) hideDetail();
    } catch (err) {
      if (!(err instanceof Unauthorized)) say(`Could not kill the session: ${err.message}`);
    }
    await refresh();
    $('sessions').focus();
  }

  async function killUser(user) {
    if (!window.confirm(`Kill every session of user ${user}?`)) return;
    try {
      const out = await api('DELETE', `/api/v1/sessions?user=${encodeURIComponent(user)}`);
      say(`Killed ${out.closed} session(s) of ${user}.`);
      hideDetail();
    } catch (err) {
      if (!(err instanceof Unauthorized)) say(`Could not kill the sessions: ${err.message}`);
    }
    await refresh();
  }

  function showLogin(message) {
    clearTimeout(timer);
    hideDetail();
    $('app').hidden = true;
    $('logout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  function showApp() {
    $('login').hidden = true;
    $('app').hidden = false;
    $('logout').hidden = false;
    void refresh();
  }

  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const input = $('token');
    try {
      await api('POST', '/login', { token: input.value.trim() });
      input.value = '';
      showApp();
      $('f-user').focus();
    } catch (err) {
      $('login-error').textContent =
        err.status === 401 ? 'That is not the admin token.' : `Could not log in: ${err.message}`;
      input.select();
    }
  });

  $('logout').addEventListener('click', async () => {
    try {
      await api('POST', '/logout');
    } finally {
      showLogin('You are logged out.');
    }
  });

  let debounce;
  const refilter = () => {
    clearTimeout(debounce);
    debounce = setTimeout(refresh, 250);
  };
  $('filters').addEventListener('input', refilter);
  $('filters').addEventListener('reset', refilter);
  $('filters').addEventListener('submit', (event) => {
    event.preventDefault();
    void refresh();
  });
  $('kill-one').addEventListener('click', () => selected && killOne(selected));
  $('kill-user').addEventListener('click', () => selected && selected.user && killUser(selected.user));
  $('close-detail').addEventListener('click', () => {
    hideDetail();
    $('sessions').focus();
  });
  $('sessions').tabIndex = -1;
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !$('app').hidden) void refresh();
  });

  // Logged in already (the cookie is still good)? Otherwise the login form.
  fetch('/api/v1/stats', { credentials: 'same-origin' })
    .then((res) => (res.ok ? showApp() : showLogin()))
    .catch(() => showLogin('The admin listener cannot be reached.'));
})();
