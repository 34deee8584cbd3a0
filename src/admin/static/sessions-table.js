// The admin page's session table (admin.js makes its rows): the order — newest first, or by any
// column —, logons in progress hidden behind a counting toggle, short ids, local times with
// the UTC value on hover. Plain script
// (the page's Content-Security-Policy allows only its own files), exposed as window.sgTable.
'use strict';

(() => {
  const text = (v) => (v === null || v === undefined ? '' : String(v));
  const time = (iso) => (iso ? Date.parse(iso) : Number.POSITIVE_INFINITY);

  // What each sortable column sorts by ("Ends in": the deadline; none = never, last).
  const KEYS = {
    id: (s) => s.id,
    user: (s) => text(s.user),
    client_ip: (s) => text(s.client_ip),
    protocol: (s) => text(s.protocol),
    user_agent: (s) => text(s.user_agent),
    state: (s) => s.state,
    created: (s) => time(s.created_at),
    ends: (s) => time(s.expires_at),
  };

  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  const compare = (a, b) => (typeof a === 'number' ? (a < b ? -1 : a > b ? 1 : 0) : collator.compare(a, b));

  // Newest first, then by id: the order every sort starts from, so equal keys keep it (the
  // sort is stable) and a refresh does not shuffle them.
  const newestFirst = (a, b) => compare(KEYS.created(b), KEYS.created(a)) || compare(a.id, b.id);

  /** The sessions sorted by column `key`, 'ascending' or 'descending'; a new array. */
  function sortSessions(sessions, key, dir) {
    const by = KEYS[key] || KEYS.created;
    const sign = dir === 'descending' ? -1 : 1;
    return [...sessions].sort(newestFirst).sort((a, b) => sign * compare(by(a), by(b)));
  }

  /** "2026-03-01 10:08:20 UTC" */
  function utc(iso) {
    return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
  }

  /** A <time> showing the reader's local date and time, with the UTC value as its title. */
  function timeElement(iso) {
    const el = document.createElement('time');
    el.dateTime = iso;
    el.title = utc(iso);
    el.textContent = new Date(iso).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
    return el;
  }

  /** The first 8 characters of a session id: enough to tell the rows apart. */
  const shortId = (id) => id.slice(0, 8);

  /**
   * The session table's body: `render(sessions)` draws `row(s)` for each in the chosen order
   * (newest first until a header button is clicked; clicked again, the other way), leaving out
   * logons in progress unless the toggle or the state filter asks for them, and counts those in
   * the toggle's line: "12 in progress hidden — show".
   */
  function sessionTable({ table, note, count, toggle, stateFilter, row }) {
    let sort = { key: 'created', dir: 'descending' };
    let showInprogress = false;
    let last = []; // drawn again when the order or the toggle changes

    function render(sessions) {
      last = sessions;
      const filtered = stateFilter.value === 'inprogress';
      const hide = !showInprogress && !filtered;
      const listed = hide ? sessions.filter((s) => s.state !== 'inprogress') : sessions;
      const rows = sortSessions(listed, sort.key, sort.dir).map(row);
      if (rows.length === 0) {
        const tr = document.createElement('tr');
        const td = document.createElement('td');
        td.textContent = 'No live sessions match.';
        td.colSpan = table.tHead.rows[0].cells.length;
        tr.append(td);
        rows.push(tr);
      }
      table.tBodies[0].replaceChildren(...rows);
      const pending = sessions.filter((s) => s.state === 'inprogress').length;
      note.hidden = pending === 0 || filtered;
      count.textContent = `${pending} in progress ${hide ? 'hidden' : 'shown'}`;
      toggle.textContent = hide ? 'show' : 'hide';
      for (const b of table.tHead.querySelectorAll('button[data-sort]')) {
        const th = b.closest('th');
        if (b.dataset.sort === sort.key) th.setAttribute('aria-sort', sort.dir);
        else th.removeAttribute('aria-sort');
      }
    }

    table.tHead.addEventListener('click', (event) => {
      const b = event.target.closest('button[data-sort]');
      if (!b) return;
      const key = b.dataset.sort;
      const dir = key === sort.key && sort.dir === 'ascending' ? 'descending' : 'ascending';
      sort = { key, dir };
      render(last);
    });
    toggle.addEventListener('click', () => {
      showInprogress = !showInprogress;
      render(last);
    });
    return { render };
  }

  window.sgTable = { sessionTable, sortSessions, timeElement, shortId, utc };
})();
